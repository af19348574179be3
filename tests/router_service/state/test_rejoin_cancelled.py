"""A call cancelled while the resilient store rejoins Redis (after an outage), once Redis has
granted it a key's slot, a group's mark or a flight: what Redis granted is given back before the
cancellation goes on, not held there for its TTL (a key of `max_in_flight: 1` blocked on every
replica)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from router_service.clock import ManualClock
from router_service.state import (
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    SlotRequest,
    StateStore,
)
from tests.replicas.redis_fixtures import RedisProxy

pytestmark = pytest.mark.timeout(30)


@dataclass(frozen=True)
class Granting:
    """One granting call of a store, and what Redis says of it: the part of the key it names,
    and whether another replica's call is granted the same now (a limit of one)."""

    name: str
    names: bytes
    take: Callable[[StateStore], Awaitable[object]]
    granted: Callable[[object], bool]


GRANTING = [
    Granting(
        "slot",
        b":slot:",
        lambda store: store.acquire(SlotRequest("k", 60, 1)),
        lambda grant: getattr(grant, "lease_id", None) is not None,
    ),
    Granting(
        "mark",
        b":grp:",
        lambda store: store.enter("g", f"m{id(store)}", limit=1, ttl_s=60),
        lambda token: token is not None,
    ),
    Granting(
        "flight",
        b":flt:",
        lambda store: store.claim_flight("f", 60),
        lambda claim: getattr(claim, "token", None) is not None,
    ),
]


@contextlib.asynccontextmanager
async def _stores(
    redis_url: str, redis_prefix: str, redis_proxy: RedisProxy
) -> AsyncIterator[tuple[ManualClock, ResilientStateStore, RedisStateStore]]:
    """A resilient store on Redis through `redis_proxy`, and another replica's plain store."""
    clock = ManualClock()
    shared = RedisStateStore.from_url(redis_proxy.url, prefix=redis_prefix, clock=clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1.0)
    other = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)  # a replica
    try:
        yield clock, store, other
    finally:
        await store.aclose()
        await other.aclose()


@pytest.mark.parametrize("call", GRANTING, ids=[call.name for call in GRANTING])
async def test_a_call_cancelled_during_the_rejoin_gives_back_what_redis_granted(
    call: Granting, redis_url: str, redis_prefix: str, redis_proxy: RedisProxy
) -> None:
    async with _stores(redis_url, redis_prefix, redis_proxy) as (clock, store, other):
        await redis_proxy.cut()
        await store.held(["k"])
        assert store.degraded
        await redis_proxy.restore()
        clock.advance(1.0)

        redis_proxy.hold_replies_after(call.names)  # Redis grants it; the reply waits
        probe = asyncio.ensure_future(call.take(store))
        await redis_proxy.held.wait()
        await store.set_value("queued-by-another", "1", 60)  # queued: the probe is out
        replayed = redis_proxy.sent_naming(b"queued-by-another")
        redis_proxy.hold_replies_after(b"queued-by-another")  # the rejoin waits on its reply
        await redis_proxy.restore()
        await replayed.wait()

        probe.cancel()
        await redis_proxy.restore()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert call.granted(await call.take(other))  # the key takes the next call at once


@pytest.mark.parametrize("call", GRANTING, ids=[call.name for call in GRANTING])
async def test_a_call_cancelled_before_redis_s_grant_reaches_it_gives_it_back(
    call: Granting, redis_url: str, redis_prefix: str, redis_proxy: RedisProxy
) -> None:
    # The plain path (no outage): cancelled while the reply of what Redis granted is on its way.
    async with _stores(redis_url, redis_prefix, redis_proxy) as (_, store, other):
        redis_proxy.hold_replies_after(call.names)  # Redis grants it; the reply waits
        given = asyncio.ensure_future(call.take(store))
        await redis_proxy.held.wait()

        undone = redis_proxy.sent_naming(call.names)  # the give-back, lazily (`LAZY_S`)
        given.cancel()
        await undone.wait()
        await redis_proxy.restore()
        with pytest.raises(asyncio.CancelledError):
            await given
        assert call.granted(await call.take(other))  # the key takes the next call at once
        assert not store.degraded
