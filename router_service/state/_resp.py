"""A small asyncio Redis client for the Redis StateStore: RESP2 over a few multiplexed connections.

Why not redis-py: its asyncio client costs about 110 µs of CPU per command here (pool checkout,
a timeout around every read, retry and response-callback layers), and a routed request makes about
a dozen store calls, so the Redis backend halved the router's throughput (`benchmarks`, Redis
variant). This client writes each command to a connection without waiting for the replies before
it (Redis answers in order, so a FIFO of futures matches replies to callers), and commands issued
in the same event-loop turn leave in one write: under load, many requests' commands share one
system call and one read.

What it supports is what the store uses: `redis://`, `rediss://` (TLS, verified) and `unix://`
URLs with an optional user, password and database; commands, pipelines and Lua scripts (EVALSHA,
falling back to EVAL when the server has forgotten the script). Bulk strings are decoded as
UTF-8 (bytes that are not, losslessly: `_resp_wire.raw`). The wire format and the URLs are
`_resp_wire.py`'s.

Failures: a connection that cannot be made within `connect_timeout_s` raises; a reply that does
not arrive within `timeout_s` (one watchdog timer per connection checks the oldest) closes that
connection and fails every caller waiting on it with `TimeoutError`; a lost connection fails them
with `ConnectionError`; the next command reconnects. An error reply raises
`RedisReplyError`. The store turns all of these into `StoreUnavailableError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from router_service._connect_deadline import connect_within
from router_service.clock import Clock
from router_service.state._resp_wire import (
    MORE,
    Arg,
    Command,
    RedisReplyError,
    ReplyReader,
    checked,
    encode,
    first_error,
    parse_url,
)

__all__ = ["BACKLOG", "LAZY_S", "RespClient", "Script", "replies"]

log = logging.getLogger("switchboard.state")

# The longest a lazy command waits for other commands to leave with (see _Connection).
LAZY_S = 0.002


class _Connection(asyncio.Protocol):
    """One connection: commands are written without waiting (auto-pipelined per loop turn) and
    each reply resolves the oldest waiting future. A `lazy` command (nobody waits for it: a key
    release after the answer) waits up to `lazy_s` for company: it leaves with the next commands
    written on the connection, and its reply comes back with theirs, so neither Redis nor this
    process wakes up for it alone."""

    def __init__(
        self, timeout_s: float, lazy_s: float = LAZY_S, reply_clock: Clock | None = None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout_s = timeout_s
        # Replies are timed on the loop's clock (a timer handle per connection), or on a clock a
        # test moves: a reply held back times out when the test says, never on a loaded machine.
        self._reply_clock = reply_clock
        self._time = self._loop.time if reply_clock is None else reply_clock.monotonic
        self._lazy_s = lazy_s
        self._lazy_timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._reader = ReplyReader()
        # Callers waiting for a reply, oldest first, each with the instant it is overdue.
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._out: list[bytes] = []
        self._flush_pending = False
        self.writes = 0  # socket writes so far: one per loop turn that sent commands
        # One timer per connection, not one per command: it wakes when the oldest waiting reply
        # is due and aborts the connection if that reply is still missing.
        self._watchdog: asyncio.TimerHandle | asyncio.Task[None] | None = None
        self.broken: BaseException | None = None
        # Replies nobody waits for (a subscribed connection's messages) go here when set.
        self.on_push: Callable[[Any], None] | None = None
        # Called once when the connection breaks or closes (the read cache's subscriber: its
        # tracking ends with it).
        self.on_lost: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def send(self, commands: Sequence[Command], *, lazy: bool = False) -> list[asyncio.Future[Any]]:
        if self.broken is not None:
            raise ConnectionError(f"redis connection lost: {self.broken}")
        futures = [self._loop.create_future() for _ in commands]
        due = self._time() + self._timeout_s
        self._waiting.extend((future, due) for future in futures)
        self._out += [encode(command) for command in commands]
        if lazy:
            if not self._flush_pending and self._lazy_timer is None:
                self._lazy_timer = self._loop.call_later(self._lazy_s, self.flush)
        elif not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self.flush)
        if self._watchdog is None:
            self._watch_at(due)
        return futures

    def _watch_at(self, due: float) -> None:
        clock = self._reply_clock
        if clock is None:
            self._watchdog = self._loop.call_at(due, self._watch)
            return

        async def watch() -> None:
            await clock.wait(due - clock.monotonic())
            self._watch()

        self._watchdog = self._loop.create_task(watch())  # cancelled with the connection

    @property
    def backlog(self) -> int:
        """Replies still awaited."""
        return len(self._waiting)

    def _watch(self) -> None:
        self._watchdog = None
        if not self._waiting or self.broken is not None:
            return
        due = self._waiting[0][1]
        if due <= self._time():
            self.abort(TimeoutError(f"redis: no reply within {self._timeout_s:g}s"))
        else:
            self._watch_at(due)

    def flush(self) -> None:
        self._flush_pending = False
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        if self._out and self._transport is not None and self.broken is None:
            self._transport.write(b"".join(self._out))
            self.writes += 1
        self._out.clear()

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        try:
            while (reply := reader.read()) is not MORE:
                if not self._waiting:
                    if self.on_push is None:
                        raise ConnectionError("redis: a reply nobody asked for")
                    self.on_push(reply)
                    continue
                future, _ = self._waiting.popleft()
                if not future.done():  # a caller that gave up (cancelled) is skipped
                    future.set_result(reply)
        except (ConnectionError, ValueError) as exc:
            self.abort(ConnectionError(f"redis protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("redis closed the connection"))

    def abort(self, exc: BaseException) -> None:
        """Close at once and fail every waiting caller (their replies can no longer be told
        apart from later ones)."""
        self._fail(exc)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, exc: BaseException) -> None:
        if self.broken is None:
            self.broken = exc
            if self.on_lost is not None:
                self.on_lost()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                failure = (
                    TimeoutError(str(exc))
                    if isinstance(exc, TimeoutError)
                    else ConnectionError(f"redis connection lost: {exc}")
                )
                future.set_exception(failure)

    def close(self) -> None:
        self._fail(ConnectionError("client closed"))
        if self._transport is not None:
            self._transport.close()


# Replies waiting on a connection before the next connection takes the new commands.
BACKLOG = 64


class RespClient:
    """Commands over up to `connections` multiplexed connections, made lazily. One carries
    everything until `BACKLOG` replies wait on it, then the next takes over: commands started
    together (an attempt's release, leave and sticky write) go out in one write and come back
    in one round trip, and a connection backed up behind a slow reply is relieved."""

    def __init__(
        self,
        url: str,
        *,
        connections: int = 2,
        timeout_s: float = 0.5,
        connect_timeout_s: float = 0.5,
        lazy_s: float = LAZY_S,
        reply_clock: Clock | None = None,
    ) -> None:
        self.address = parse_url(url)
        self._timeout_s = timeout_s
        self._reply_clock = reply_clock  # None: the event loop's (see _Connection)
        self._lazy_s = lazy_s
        self._connect_timeout_s = connect_timeout_s
        self._slots: list[_Connection | None] = [None] * max(1, connections)
        self._locks = [asyncio.Lock() for _ in self._slots]
        self._connects = [0] * len(self._slots)  # per slot: connects begun; the last's failure
        self._failed: list[BaseException | None] = [None] * len(self._slots)
        self._turn = 0
        self.closed = False  # aclose called: no more connects (nor subscribers, see callers)

    async def execute(self, *command: Arg, lazy: bool = False) -> Any:
        """One command's reply; an error reply raises `RedisReplyError`. `lazy`: the command
        may wait a little (`lazy_s`) for other commands to leave with."""
        (reply,) = await self.pipeline([command], lazy=lazy)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Command], *, lazy: bool = False) -> list[Any]:
        """The replies of `commands`, sent together, in order; error replies are returned as
        `RedisReplyError` values."""
        connection = await self.connection()
        return await replies(connection.send(commands, lazy=lazy))

    async def post(self, commands: Sequence[Command]) -> None:
        """Queue `commands` as lazy ones and return without waiting for their replies: writes
        whose effect nobody waits for (the record of a slot that enforces nothing). They leave
        before any command queued after them on this connection; a failure is only logged (a
        lost connection is seen by the next command that waits)."""
        connection = await self.connection()
        for future in connection.send(commands, lazy=True):
            future.add_done_callback(_unread_reply)

    def script(self, source: str) -> Script:
        return Script(self, source)

    async def dedicated(self) -> _Connection:
        """A new connection of its own, outside the pool (a subscriber); the caller closes it."""
        return await self._connect()

    async def connection(self) -> _Connection:
        """The connection the next commands go to (made if needed); callers that must act on
        that connection itself (a script's undo, after it on the same connection) send on it."""
        index = self._turn
        connection = self._slots[index]
        if connection is not None and connection.backlog >= BACKLOG and len(self._slots) > 1:
            # What waits to leave on this one goes first: posted commands keep their order
            # with the commands that follow them (a slot's record, then its release).
            connection.flush()
            index = self._turn = (index + 1) % len(self._slots)
            connection = self._slots[index]
        if connection is not None and connection.broken is None:
            return connection
        lock = self._locks[index]  # one connect per slot; the others wait for it
        awaited = self._connects[index] if lock.locked() else None  # the one under way
        async with lock:
            connection = self._slots[index]
            if connection is None or connection.broken is not None:
                if awaited == self._connects[index] and (failed := self._failed[index]):
                    # It failed: so does this caller (each in turn, N callers waited N timeouts).
                    raise ConnectionError(f"redis: the connect waited for failed ({failed!r})")
                self._connects[index] += 1
                self._failed[index] = None  # if cancelled, its waiters connect themselves
                try:
                    connection = self._slots[index] = await self._connect()
                except (OSError, RedisReplyError) as exc:
                    self._failed[index] = exc
                    raise
            return connection

    async def _connect(self) -> _Connection:
        if self.closed:
            raise ConnectionError("the redis client is closed")
        # Not timed out across a stall of our own loop (`connect_within`): a replica busy for a
        # moment would take Redis for lost, and go on with its local state, for nothing.
        return await connect_within(self._opened(), self._connect_timeout_s)

    async def _opened(self) -> _Connection:
        """A new connection, logged in and on its database."""
        address = self.address
        loop = asyncio.get_running_loop()

        def protocol() -> _Connection:
            return _Connection(self._timeout_s, self._lazy_s, self._reply_clock)

        if address.path is not None:
            _, connection = await loop.create_unix_connection(protocol, address.path)
        else:
            context = ssl.create_default_context() if address.tls else None
            _, connection = await loop.create_connection(
                protocol, address.host, address.port, ssl=context
            )
        setup: list[Command] = []
        if address.password is not None:
            credentials = [address.username] if address.username else []
            setup.append(["AUTH", *credentials, address.password])
        if address.db:
            setup.append(["SELECT", address.db])
        try:
            if setup:
                checked(await replies(connection.send(setup)))
            if self.closed:  # closed meanwhile: nobody would close this one
                raise ConnectionError("the redis client is closed")
        except BaseException:  # refused, timed out, cancelled or closed: it goes too
            connection.close()
            raise
        return connection

    async def aclose(self) -> None:
        self.closed = True
        for index, connection in enumerate(self._slots):
            if connection is not None:
                connection.close()
            self._slots[index] = None


def _unread_reply(future: asyncio.Future[Any]) -> None:
    """The reply of a posted command: nobody reads it, a failure is logged."""
    if future.cancelled():
        return
    failure = future.exception() or first_error([future.result()])
    if failure is not None:
        log.debug("a posted redis command failed: %s", failure)


async def replies(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """The replies behind `futures`, in order. No timer here: the connection's watchdog fails
    them when overdue. A caller that gives up leaves no reply pending and no failure unread."""
    try:
        return [await future for future in futures]
    except BaseException:
        for future in futures:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning
        raise


class Script:
    """A Lua script run by its SHA-1 (EVALSHA), sent in full (EVAL, which also caches it) when
    the server does not know it: a restarted or flushed Redis."""

    def __init__(self, client: RespClient, source: str) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, keys: Sequence[Arg], args: Sequence[Arg], *, undo: Sequence[Command] = ()
    ) -> Any:
        """The script's reply. `undo`: commands that take back what the script may have done,
        sent if the caller gives up waiting for its reply (cancelled): Redis runs the script
        anyway, and the undo after it (see `_run`)."""
        reply = await self._run(["EVALSHA", self._sha, len(keys), *keys, *args], undo)
        if isinstance(reply, RedisReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._run(["EVAL", self._source, len(keys), *keys, *args], undo)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def _run(self, command: Command, undo: Sequence[Command]) -> Any:
        if not undo:
            (reply,) = await self._client.pipeline([command])
            return reply
        connection = await self._client.connection()
        try:
            (reply,) = await replies(connection.send([command]))
        except asyncio.CancelledError:
            # On the same connection, whose commands Redis runs in order: after the script.
            # Nobody waits for it (the caller is gone); a lost connection loses it, and what
            # the script took then frees itself by its TTL.
            if connection.broken is None:
                for future in connection.send(undo, lazy=True):
                    future.add_done_callback(_unread_reply)
            raise
        return reply
