"""Redis for tests: the shared server on 127.0.0.1:6379 (a fresh key prefix per test, removed
afterwards) and private `redis-server` processes that a test may stop and start again.

Under `CI=true` a missing Redis fails the tests instead of skipping them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio

from tests.helpers import close_listener, free_port

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# A router's Redis timeouts in tests that do not test them: hang guards. Redis on loopback answers
# in microseconds, but a test worker starved on a loaded CI machine may not read its reply for
# seconds, and a replica that then falls back to its local state (until its next retry, on a
# ManualClock that may never move) answers 404 for what the other replica stored, or 503. Tests
# of a slow or silent Redis set their own.
HANG_GUARD_TIMEOUTS = {"socket_timeout_s": 60.0, "connect_timeout_s": 60.0}


def redis_state(url: str, prefix: str) -> dict[str, Any]:
    """A router config's `state` section on the test Redis under `prefix`, its timeouts hang
    guards."""
    return {"backend": "redis", "url": url, "prefix": prefix, **HANG_GUARD_TIMEOUTS}


def _sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis, checked once per session."""
    address = urlsplit(REDIS_URL).netloc.rsplit("@", 1)[-1]
    client = _sync_client(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {address} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI runs the Redis tests; start redis-server first")
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"sbtest:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = _sync_client(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["memory", "redis"])
def state_section(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A router config's `state` section, once of each backend: one process's memory, or the
    test Redis under a prefix of the test's own."""
    if request.param == "memory":
        return {"backend": "memory"}
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return redis_state(url, prefix)


def keys_under(url: str, prefix: str) -> dict[str, int]:
    """Every key under `prefix` and its TTL in ms (-1: none)."""
    client = _sync_client(url)
    try:
        return {
            key.decode(): int(client.pttl(key))
            for key in client.scan_iter(match=f"{prefix}:*", count=1000)
        }
    finally:
        client.close()


class PrivateRedis:
    """A `redis-server` on its own port, without persistence: stop it, start it again."""

    def __init__(self, port: int | None = None, *, args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.args = args  # more redis-server options
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (Debian package redis-server)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *self.args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            for _ in range(200):
                with contextlib.suppress(redis.RedisError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.025)
            raise AssertionError(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Kill it at once (SIGKILL): an outage, not a shutdown."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class RedisProxy:
    """The network between replicas and a Redis, on a loopback port of its own: `cut` closes
    every connection through it and refuses new ones (Redis itself runs on, data and all) until
    `restore`; `hold_replies` lets commands reach Redis but keeps its replies back (Redis ran
    them, the replica has not heard yet: a slow reply, or one lost in a timeout) until
    `restore` lets them on, late, on the connections still open."""

    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 6379)
        self._path = target.path
        self.port = free_port()
        self._listener: asyncio.Server | None = None
        self._pipes: dict[asyncio.Task[None], tuple[asyncio.StreamWriter, ...]] = {}
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.held = asyncio.Event()  # a reply was kept back (its command ran on Redis)
        self.sent = asyncio.Event()  # commands went to Redis (clear it, then wait for the next)
        self._hold_after: bytes | None = None  # `hold_replies_after`'s
        self._watched: list[tuple[bytes, asyncio.Event]] = []  # `sent_naming`'s

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self._path}"

    async def start(self) -> None:
        self._listener = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Every connection through the proxy closed, new ones refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await close_listener(listener)
        await self._close_pipes()

    async def restore(self) -> None:
        """Connections go through again; replies held back go on, late."""
        self._flowing.set()
        if self._listener is None:
            await self.start()

    def hold_replies(self) -> None:
        self._flowing.clear()
        self.held.clear()

    def hold_replies_after(self, sent: bytes) -> None:
        """`hold_replies` from the first command naming `sent` on (`lease:alpha:`: a call held
        where it leases one of alpha's keys, past what it asked Redis before)."""
        self._hold_after = sent

    def sent_naming(self, part: bytes) -> asyncio.Event:
        """An event set once a command naming `part` goes to Redis from now on, also while
        replies are held (`ZREM`: a key slot given back, by a handler that was cancelled)."""
        seen = asyncio.Event()
        self._watched.append((part, seen))
        return seen

    async def aclose(self) -> None:
        await self.cut()

    async def _close_pipes(self) -> None:
        """Abort both ends of every connection, as a broken network does, and wait for their
        pumps to see it."""
        pipes = list(self._pipes.items())
        for ends in self._pipes.values():
            for end in ends:
                end.transport.abort()
        await asyncio.gather(*(task for task, _ in pipes), return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        # Known (and cut by `_close_pipes`) from its first step, not once Redis answered: a cut
        # while it connects ends it too.
        self._pipes[task] = (writer,)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            self._pipes[task] = (writer, up_writer)
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(reader, up_writer, replies=False))
                pumps.create_task(self._pump(up_reader, writer, replies=True))
        except* (OSError, EOFError):  # ConnectionError is one; OSError: Redis refused
            pass
        finally:
            del self._pipes[task]
            writer.transport.abort()
            if up_writer is not None:
                up_writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, replies: bool
    ) -> None:
        while data := await reader.read(65536):
            if replies and not self._flowing.is_set():
                self.held.set()
                await self._flowing.wait()  # what follows waits in the socket behind it
            if not replies and self._hold_after is not None and self._hold_after in data:
                self._hold_after = None
                self.hold_replies()  # before it reaches Redis: its reply is held
            writer.write(data)
            if not replies:
                self.sent.set()
                for part, seen in self._watched:
                    if part in data:
                        seen.set()
            await writer.drain()
        raise EOFError  # one side closed: the pipe ends (the TaskGroup stops the other pump)


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    """A proxy to the suite's Redis (see RedisProxy)."""
    proxy = RedisProxy(redis_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
