"""A grant's rate windows (`SlotGrant.rate`): where its resource stands, from the same atomic
decision that admitted or refused it (no second read). Every store answers the same, to the float
(the contract fixture); the memory and Redis stores side by side on one clock agree grant by
grant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from router_service.clock import ManualClock
from router_service.state import (
    MemoryStateStore,
    RateWindows,
    RedisStateStore,
    SlotGrant,
    SlotRequest,
    StateStore,
)
from tests.router_service.state.stores import MakeStore


async def test_a_granted_request_is_counted_in_the_windows_it_returns(
    make_store: MakeStore,
) -> None:
    clock = ManualClock(start=600.0)  # the start of window 10
    store = make_store(clock)
    first = await store.acquire(SlotRequest("k", 60, rpm=10, tpm=1000, tokens=300))
    assert first.rate == RateWindows(600.0, 10, 1.0, 300.0, 0.0, 0.0)
    clock.advance(90.5)  # halfway and a bit into window 11: window 10 is the previous one
    second = await store.acquire(SlotRequest("k", 60, rpm=10, tpm=1000, tokens=100))
    assert second.rate == RateWindows(690.5, 11, 1.0, 100.0, 1.0, 300.0)


async def test_a_refused_request_returns_the_windows_as_found(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    for _ in range(2):
        assert (await store.acquire(SlotRequest("k", 60, rpm=2, tpm=50, tokens=7))).lease_id
    clock.advance(1.25)
    refused = await store.acquire(SlotRequest("k", 60, rpm=2, tpm=50, tokens=7))
    assert refused.lease_id is None
    assert refused.rate == RateWindows(601.25, 10, 2.0, 14.0, 0.0, 0.0)  # nothing counted


async def test_windows_follow_the_deadlines_of_a_guarded_request(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    await store.extend_deadline("cool", 590.0)  # over: found as 0.0, the slot is granted
    grant = await store.acquire(SlotRequest("k", 60, rpm=5, unless=("cool", "other")))
    assert grant.deadlines == (0.0, 0.0)
    assert grant.rate == RateWindows(600.0, 10, 1.0, 0.0, 0.0, 0.0)
    await store.extend_deadline("cool", 700.0)
    blocked = await store.acquire(SlotRequest("k", 60, rpm=5, unless=("cool",)))
    assert (blocked.lease_id, blocked.deadlines, blocked.rate) == (None, (700.0,), None)


async def test_no_windows_without_a_rate_limit(make_store: MakeStore) -> None:
    store = make_store(ManualClock(start=600.0))
    assert (await store.acquire(SlotRequest("k", 60))).rate is None
    assert (await store.acquire(SlotRequest("k", 60, 1))).rate is None
    busy = await store.acquire(SlotRequest("k", 60, 1, rpm=5))  # in flight: refused before
    assert (busy.lease_id, busy.rate) == (None, None)


@pytest.fixture
async def memory_and_redis(
    redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[ManualClock, StateStore, StateStore]]:
    clock = ManualClock(start=1_700_000_003.25)  # not a window's start: fractional weights
    memory = MemoryStateStore(clock)
    redis = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    yield clock, memory, redis
    await redis.aclose()
    await memory.aclose()


def _without_lease(grant: SlotGrant) -> tuple[bool, float, int, RateWindows | None]:
    return grant.lease_id is not None, grant.retry_after_s, grant.window, grant.rate


async def test_redis_grants_the_same_windows_as_memory(
    memory_and_redis: tuple[ManualClock, StateStore, StateStore],
) -> None:
    clock, memory, redis = memory_and_redis
    steps = [0.0, 0.7, 13.1, 29.9, 31.3, 0.01, 44.4, 17.0, 61.7, 3.3, 130.0, 0.2]
    grants = 0
    for i, step in enumerate(steps):
        clock.advance(step)
        request = SlotRequest("client:app:rate", 60, rpm=4, tpm=900, tokens=97 + 31 * i)
        here, there = await memory.acquire(request), await redis.acquire(request)
        assert _without_lease(here) == _without_lease(there), f"step {i}"
        assert here.rate is not None
        grants += here.lease_id is not None
        await memory.add_tokens(request.resource, here.window, -13)
        await redis.add_tokens(request.resource, there.window, -13)
    assert 0 < grants < len(steps)  # both admitted and refused on the way
