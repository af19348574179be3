"""A Redis at `maxclients` greets a new connection with `-ERR max number of clients reached`
and closes it: an outage that passes once connections free up, not the answer of the command
that read it. A write queued during the outage stays queued for the next replay (dropped as
"refused", a whole queue of releases was lost, one connect each)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from router_service.clock import ManualClock
from router_service.state import (
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    StoreUnavailableError,
)
from router_service.state._resp import RespClient
from tests.replicas.redis_fixtures import PrivateRedis

pytestmark = pytest.mark.timeout(20)

FULL = b"-ERR max number of clients reached\r\n"


@pytest.fixture
async def full_redis() -> AsyncIterator[str]:
    """A loopback server that answers every connection as a Redis at `maxclients` does."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(FULL)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(refuse, "127.0.0.1", 0)
    yield f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    listener.close()
    await listener.wait_closed()


@pytest.mark.parametrize("login", ["", ":pw@"], ids=["no-login", "login"])
async def test_a_full_redis_is_unreachable_not_a_refusal(full_redis: str, login: str) -> None:
    store = RedisStateStore.from_url(f"redis://{login}{full_redis}/0", prefix="p")
    try:
        with pytest.raises(StoreUnavailableError) as failed:
            await store.release("k", "lease")
        assert failed.value.refused is None
    finally:
        await store.aclose()


async def test_a_write_queued_while_redis_is_full_is_kept_for_the_next_replay(
    full_redis: str,
) -> None:
    clock = ManualClock()
    shared = RedisStateStore.from_url(f"redis://{full_redis}/0", prefix="p", clock=clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1)
    try:
        await store.release("k", "lease")  # queued
        assert store.degraded
        for _ in range(4):  # probes: each replay meets a full Redis again (or its hang-up)
            clock.advance(1.0)
            await store.held(["k"])
            assert store.degraded
            assert "1 writes queued" in store.detail()
    finally:
        await store.aclose()


@pytest.mark.parametrize("login", [False, True], ids=["no-login", "login"])
async def test_a_full_redis_leaves_reads_uncached_for_a_while_not_for_good(
    private_redis: PrivateRedis, login: bool
) -> None:
    """The read cache's subscriber meets a full Redis (its greeting read as the reply of the
    login or of `CLIENT ID`): the read goes on uncached, and a subscriber is made again once
    Redis has room. (Without a login the read cache was off for good, "refused key tracking";
    with one, every read failed while Redis was full, the replica on local state.)"""
    url = private_redis.url
    if login:
        admin = redis.asyncio.Redis.from_url(url)
        await admin.config_set("requirepass", "pw")
        await admin.aclose()
        url = url.replace("redis://", "redis://:pw@")
    clock = ManualClock()
    client = RespClient(url, timeout_s=30, connect_timeout_s=30)
    store = RedisStateStore(client, prefix="p", clock=clock)
    cache = store.cache
    assert cache is not None
    try:
        await client.execute("CONFIG", "SET", "maxclients", "1")  # the pool's one: no more room
        assert await store.deadlines(["cool:a"]) == [0.0]
        await client.execute("CONFIG", "SET", "maxclients", "100")
        clock.advance(1.0)  # a while later, the next read makes a subscriber
        assert await store.deadlines(["cool:a"]) == [0.0]
        hits = cache.hits
        assert await store.deadlines(["cool:a"]) == [0.0]
        assert cache.hits == hits + 1  # read from memory: tracking is on
    finally:
        await store.aclose()


async def test_a_full_redis_is_not_said_to_refuse_flight_notices(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """The flight notices' subscriber meets a full Redis (its greeting read as the reply of
    `SUBSCRIBE`): not heard for now, tried again a while later, and no warning that Redis
    refused SUBSCRIBE (said once, it also hid a real refusal later)."""
    clock = ManualClock()
    client = RespClient(private_redis.url, timeout_s=30, connect_timeout_s=30)
    store = RedisStateStore(client, prefix="p", clock=clock)
    try:
        await client.execute("CONFIG", "SET", "maxclients", "1")  # the pool's one: no more room
        with caplog.at_level(logging.WARNING, logger="switchboard.state"):
            assert not await store.notices.subscribed()
        assert not caplog.records
        await client.execute("CONFIG", "SET", "maxclients", "100")
        clock.advance(1.0)
        assert await store.notices.subscribed()
    finally:
        await store.aclose()
