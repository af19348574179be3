"""The Redis StateStore's own client (`_resp.py`): commands, URLs, replies matched
to callers on a multiplexed connection (also when a caller gave up), timeouts that close the
connection and a reconnect after them — against a scripted loopback server and the real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

import pytest

from router_service.clock import ManualClock
from router_service.state._resp import BACKLOG, RespClient
from router_service.state._resp_wire import (
    RedisAddress,
    RedisReplyError,
    encode,
    parse_url,
    redacted,
)
from tests.helpers import advance_until_done, eventually

pytestmark = pytest.mark.timeout(20)


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode(["SET", "k", 12, b"\x00v"]) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\x00v\r\n"
    )


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:6379/0", RedisAddress()),
        ("redis://h", RedisAddress(host="h")),
        ("redis://:p%40ss@h:7000/3", RedisAddress(host="h", port=7000, password="p@ss", db=3)),
        ("rediss://u:pw@h/2", RedisAddress(host="h", tls=True, username="u", password="pw", db=2)),
        ("unix:///run/redis.sock?db=5", RedisAddress(path="/run/redis.sock", db=5)),
    ],
)
def test_urls(url: str, address: RedisAddress) -> None:
    assert parse_url(url) == address


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="scheme"):
        parse_url("http://127.0.0.1:6379")


class ScriptedServer:
    """A loopback server that writes what the test queues, one byte per write, whatever was
    asked: replies arrive when (and cut how) the test decides."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.connections = 0
        self.closed = asyncio.Event()  # a client connection has gone
        self.received = asyncio.Event()  # a command has arrived

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answering = asyncio.ensure_future(self._answer(writer))
        try:
            while await reader.read(1024):
                self.received.set()
        except ConnectionError:
            pass
        finally:
            answering.cancel()
            writer.close()
            self.closed.set()

    async def _answer(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                reply = await self.replies.get()
                for i in range(len(reply)):
                    writer.write(reply[i : i + 1])
                    await writer.drain()


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedServer, str]]:
    server = ScriptedServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield server, f"redis://127.0.0.1:{port}/0"
    listener.close()
    await listener.wait_closed()


async def test_replies_in_pieces_reach_the_right_callers(
    scripted: tuple[ScriptedServer, str],
) -> None:
    server, url = scripted
    client = RespClient(url, connections=1, timeout_s=5)
    try:
        first = asyncio.ensure_future(client.execute("GET", "a"))
        second = asyncio.ensure_future(client.pipeline([("GET", "b"), ("BAD",)]))
        await asyncio.sleep(0)
        for reply in (b"$1\r\nA\r\n", b"$1\r\nB\r\n-ERR no\r\n"):
            server.replies.put_nowait(reply)
        assert await first == "A"
        b, bad = await second
        assert b == "B" and isinstance(bad, RedisReplyError) and str(bad) == "ERR no"
    finally:
        await client.aclose()


async def test_a_caller_that_gave_up_does_not_shift_the_replies(
    scripted: tuple[ScriptedServer, str],
) -> None:
    server, url = scripted
    client = RespClient(url, connections=1, timeout_s=5)
    try:
        gone = asyncio.ensure_future(client.execute("GET", "gone"))
        await server.received.wait()  # its command is out: its reply will come first
        gone.cancel()
        stays = asyncio.ensure_future(client.execute("GET", "stays"))
        server.replies.put_nowait(b"$4\r\ngone\r\n$5\r\nstays\r\n")
        assert await stays == "stays"
        assert gone.cancelled()
    finally:
        await client.aclose()


async def test_a_silent_server_times_out_every_waiting_caller_and_the_next_call_reconnects(
    scripted: tuple[ScriptedServer, str],
) -> None:
    server, url = scripted
    # Timed on a clock the test moves: the replies after it are never late on a loaded machine.
    clock = ManualClock()
    client = RespClient(url, connections=1, timeout_s=0.2, reply_clock=clock)
    try:
        waiting = [asyncio.ensure_future(client.execute("PING")) for _ in range(3)]
        gathered = asyncio.gather(*waiting, return_exceptions=True)
        await advance_until_done(clock, 0.1, gathered, what="the silent replies timing out")
        results = await gathered
        assert all(isinstance(r, (TimeoutError, ConnectionError)) for r in results), results
        assert any(isinstance(r, TimeoutError) for r in results)
        await server.closed.wait()  # the client closed the silent connection
        server.replies.put_nowait(b"+PONG\r\n")
        assert await client.execute("PING") == "PONG"
        assert server.connections == 2
    finally:
        await client.aclose()


async def test_on_the_loops_clock_a_silent_server_times_out_every_waiting_caller(
    scripted: tuple[ScriptedServer, str],
) -> None:
    """Production's watchdog, a timer on the event loop (no reply clock): the server never
    answers, so only the timeout can end these calls, however loaded the machine."""
    server, url = scripted
    client = RespClient(url, connections=1, timeout_s=0.2)
    try:
        waiting = [asyncio.ensure_future(client.execute("PING")) for _ in range(3)]
        async with asyncio.timeout(15):  # a hang guard: the watchdog's own end is no exception
            results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, (TimeoutError, ConnectionError)) for r in results), results
        assert any(isinstance(r, TimeoutError) for r in results)
        await server.closed.wait()  # the client closed the silent connection
    finally:
        await client.aclose()


async def test_a_login_without_an_answer_times_out_and_closes_its_connection(
    scripted: tuple[ScriptedServer, str],
) -> None:
    server, url = scripted
    # The reply watchdog (60 s) would close it far too late: only the failed login may.
    client = RespClient(
        url.replace("redis://", "redis://:pw@"), timeout_s=60, connect_timeout_s=0.2
    )
    with pytest.raises(TimeoutError):
        await client.execute("PING")  # AUTH goes first and is never answered
    await server.closed.wait()  # the half-made connection was closed, not left behind
    await client.aclose()


async def test_nothing_listening_fails_fast() -> None:
    # A hang guard: a refusal comes at once, and a short window could end first on a busy loop.
    client = RespClient("redis://127.0.0.1:9/0", connect_timeout_s=30)
    with pytest.raises(ConnectionRefusedError):
        await client.execute("PING")
    await client.aclose()


# -- against the real Redis ---------------------------------------------------------------------
async def test_many_callers_share_one_connection(redis_url: str, redis_prefix: str) -> None:
    client = RespClient(redis_url, connections=1)
    key = f"{redis_prefix}:counter"
    try:
        counts = await asyncio.gather(*(client.execute("INCR", key) for _ in range(300)))
        assert sorted(counts) == list(range(1, 301))  # every caller got its own reply
        await client.execute("DEL", key)
    finally:
        await client.aclose()


async def test_the_database_in_the_url_is_selected(redis_url: str, redis_prefix: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    key, value = f"{redis_prefix}:db", secrets.token_hex(4)
    in_db3, in_db0 = RespClient(f"{base}/3"), RespClient(f"{base}/0")
    try:
        await in_db3.execute("SET", key, value, "PX", 60_000)
        assert await in_db3.execute("GET", key) == value
        assert await in_db0.execute("GET", key) is None
        await in_db3.execute("DEL", key)
    finally:
        await in_db3.aclose()
        await in_db0.aclose()


async def test_a_refused_login_is_an_error_reply(redis_url: str) -> None:
    # The test Redis has no password: AUTH is refused, and the connection is not used.
    host = redis_url.split("://", 1)[1].rsplit("@", 1)[-1]
    client = RespClient(f"redis://:wrong@{host}")
    with pytest.raises(RedisReplyError):
        await client.execute("PING")
    await client.aclose()


async def test_scripts_run_by_hash_and_survive_a_flush(redis_url: str) -> None:
    client = RespClient(redis_url)
    source = f"return {{ARGV[1], '{secrets.token_hex(4)}'}}"
    script = client.script(source)
    try:
        assert (await script([], ["x"]))[0] == "x"
        await client.execute("SCRIPT", "FLUSH")
        assert (await script([], ["y"]))[0] == "y"
        with pytest.raises(RedisReplyError):
            await client.script("return redis.call('NOPE')")([], [])
    finally:
        await client.aclose()


async def test_commands_started_together_go_out_in_one_write(
    redis_url: str, redis_prefix: str
) -> None:
    """Calls started in one loop turn share a connection and a socket write (one round trip);
    a second connection takes over only while `BACKLOG` replies wait on the first."""
    client = RespClient(redis_url, connections=2)
    key = f"{redis_prefix}:together"
    try:
        await client.execute("PING")
        (first,) = [c for c in client._slots if c is not None]
        before = first.writes
        replies = await asyncio.gather(
            client.execute("SET", key, "1"),
            client.execute("INCR", key),
            client.execute("DEL", key),
        )
        assert list(replies) == ["OK", 2, 1]  # gather's list, typed as a tuple
        assert first.writes - before == 1
        assert client._slots.count(None) == 1  # no second connection was needed

        burst = [client.execute("PING") for _ in range(BACKLOG + 10)]
        assert await asyncio.gather(*burst) == ["PONG"] * (BACKLOG + 10)
        second = next(c for c in client._slots if c is not None and c is not first)
        assert second.writes >= 1  # it carried the commands past the backlog
    finally:
        await client.aclose()


async def test_a_lazy_command_leaves_with_the_next_ones(redis_url: str, redis_prefix: str) -> None:
    """A lazy command (a release after the answer) is not written on its own: the next
    commands on its connection carry it, in the same write, ahead of them."""
    client = RespClient(redis_url, connections=1, lazy_s=3600)  # its timer never fires here
    key = f"{redis_prefix}:lazy"
    try:
        await client.execute("PING")
        (connection,) = [c for c in client._slots if c is not None]
        before = connection.writes
        lazy = asyncio.create_task(client.execute("SET", key, "released", lazy=True))
        for _ in range(3):
            await asyncio.sleep(0)  # loop turns in which any other command would have left
        assert connection.writes == before and not lazy.done()

        assert await client.execute("GET", key) == "released"  # written after the lazy SET
        assert await lazy == "OK"
        assert connection.writes == before + 1
    finally:
        await client.aclose()


async def test_a_lazy_command_alone_leaves_after_its_wait(
    redis_url: str, redis_prefix: str
) -> None:
    client = RespClient(redis_url, connections=1, lazy_s=0.001)
    try:
        await client.execute("PING")
        assert await client.execute("SET", f"{redis_prefix}:lazy", "x", lazy=True) == "OK"
    finally:
        await client.aclose()


async def test_posted_commands_wait_for_company_and_a_failure_is_only_logged(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`post` returns at once; its commands leave, in order, with the next ones written."""
    client = RespClient(redis_url, connections=1, lazy_s=3600)
    key = f"{redis_prefix}:posted"
    try:
        connection = await client.connection()
        await client.execute("PING")
        before = connection.writes
        with caplog.at_level(logging.DEBUG, logger="switchboard.state"):
            await client.post([("SET", key, "x"), ("INCR", key)])  # the INCR fails
            assert connection.writes == before and connection.backlog == 2
            assert await client.execute("GET", key) == "x"  # written after them
        assert connection.writes == before + 1 and connection.backlog == 0
        assert "a posted redis command failed" in caplog.text and "not an integer" in caplog.text
    finally:
        await client.aclose()


async def test_commands_waiting_to_leave_go_before_the_next_connection_takes_over(
    redis_url: str, redis_prefix: str
) -> None:
    """A connection with `BACKLOG` replies waiting hands the next commands to another one,
    and writes what it still held first: posted commands stay ahead of what follows them."""
    client = RespClient(redis_url, connections=2, lazy_s=3600)
    key = f"{redis_prefix}:rotation"
    try:
        first = await client.connection()
        await client.execute("PING")
        await client.post([("INCR", key)] * BACKLOG)
        assert first.writes == 1
        second = await client.connection()
        assert second is not first
        assert first.writes == 2  # flushed before the hand-over, not an hour later
        await client.execute("PING")  # on `second`; `first`'s replies arrive meanwhile

        async def drained() -> bool:
            return first.backlog == 0

        await eventually(drained, what="the posted commands' replies")
        assert await client.execute("GET", key) == str(BACKLOG)
    finally:
        await client.aclose()


def test_logged_urls_hide_the_password() -> None:
    assert redacted("redis://user:s3cret@redis.internal:6379/2") == (
        "redis://user:***@redis.internal:6379/2"
    )
    assert redacted("redis://:s3cret@h:6379") == "redis://:***@h:6379"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"
