"""A queued write that a real Redis answers with an error (a wrong type, out of memory) is that
write's answer, not an outage: it is dropped with one warning and the replay goes on, so the
replica goes back on shared state; a connection failure is still retried."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import redis

from router_service.clock import ManualClock
from router_service.state import (
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    SlotRequest,
    StoreUnavailableError,
)
from router_service.state._redis_entries import translated
from router_service.state._resp_wire import RedisReplyError
from tests.replicas.redis_fixtures import PrivateRedis, RedisProxy


def resilient(url: str, prefix: str, clock: ManualClock) -> ResilientStateStore:
    shared = RedisStateStore.from_url(url, prefix=prefix, clock=clock)
    return ResilientStateStore(shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1.0)


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


async def test_a_write_redis_refuses_is_dropped_and_the_replica_rejoins(
    redis_url: str, redis_prefix: str, redis_proxy: RedisProxy, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    store = resilient(redis_proxy.url, redis_prefix, clock)
    lease = (await store.acquire(SlotRequest("k", 60, 1))).lease_id
    assert lease is not None
    await redis_proxy.cut()
    await store.release("k", lease)  # queued: its ZREM will meet a string
    until = clock.now() + 500.0
    await store.extend_deadline("d", until)  # queued after it
    assert store.degraded
    direct = redis.Redis.from_url(redis_url)
    direct.set(f"{redis_prefix}:slot:k", "not a zset")  # WRONGTYPE for the release
    direct.close()

    await redis_proxy.restore()
    clock.advance(1.0)
    with caplog.at_level(logging.WARNING, logger="switchboard.state"):
        assert await store.deadlines(["d"]) == [until]
    assert not store.degraded
    assert await store.shared.deadlines(["d"]) == [until]  # the write behind it was replayed
    assert refusals(caplog) == [
        "shared state refused a queued release (WRONGTYPE): dropped, not tried again"
    ]
    assert not any(lease in r.getMessage() or ":slot:" in r.getMessage() for r in caplog.records)
    await store.aclose()


@pytest.fixture
async def full_redis() -> AsyncIterator[PrivateRedis]:
    """A Redis that refuses every write that needs memory (OOM)."""
    server = PrivateRedis(args=("--maxmemory", "1", "--maxmemory-policy", "noeviction"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_writes_an_out_of_memory_redis_refuses_do_not_spin(
    full_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    store = resilient(full_redis.url, "t", clock)
    with caplog.at_level(logging.WARNING, logger="switchboard.state"):
        await store.set_value("s", "v", 60.0)  # refused: local state, queued
        assert store.degraded
        for _ in range(5):  # not before the interval: no call reaches Redis
            await store.set_value("s", "v", 60.0)
        assert refusals(caplog) == []
        clock.advance(1.0)
        assert await store.get_values(["s"]) == [None]  # the probe: reads still answered
    assert not store.degraded
    assert (
        refusals(caplog)
        == ["shared state refused a queued set_value (OOM): dropped, not tried again"] * 6
    )
    await store.aclose()


@pytest.mark.parametrize(
    ("said", "refused"),
    [
        ("LOADING Redis is loading the dataset in memory", None),
        ("READONLY You can't write against a read only replica.", None),
        ("BUSY Redis is busy running a script.", None),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE"),
        ("ERR Error running script (call to f_0): @user_script:1: oops", "ERR"),
    ],
)
def test_a_redis_that_answers_otherwise_by_itself_is_an_outage(
    said: str, refused: str | None
) -> None:
    # Loading, running a script, failing over: the write is tried again, not dropped.
    with pytest.raises(StoreUnavailableError) as caught, translated():
        raise RedisReplyError(said)
    assert caught.value.refused == refused
