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
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio

from tests.helpers import free_port

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
