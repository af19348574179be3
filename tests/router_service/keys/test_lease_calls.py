"""A lease's calls besides its own (an embeddings request sent as several upstream calls,
`KeyLease.more_calls`): counted in the key's rpm window, run beside it only in in-flight slots
the key has free, given back with the lease. On each store (memory, Redis)."""

from __future__ import annotations

import asyncio
import random

import pytest
from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import CooldownsConfig, KeyConfig
from router_service.keys import KeyLease, KeyPool
from router_service.state import RateCount, RedisStateStore
from tests.helpers import eventually
from tests.replicas.redis_fixtures import RedisProxy
from tests.router_service.state.conftest import redis_prefix, redis_proxy, redis_url
from tests.router_service.state.stores import MakeStore, make_store

__all__ = ["make_store", "redis_prefix", "redis_proxy", "redis_url"]


def pool_of(store_of: MakeStore, **limits: int) -> KeyPool:
    clock = ManualClock(start=600.0)
    key = KeyConfig(key=SecretStr("k1"), **limits)
    return KeyPool(
        "p",
        [key],
        store=store_of(clock),
        clock=clock,
        cooldowns=CooldownsConfig(),
        lease_ttl_s=60,
        rng=random.Random(7),
    )


async def test_more_calls_take_the_free_slots_and_give_them_back(make_store: MakeStore) -> None:
    pool = pool_of(make_store, max_in_flight=3)
    other = await pool.lease("m")
    lease = await pool.lease("m")
    assert isinstance(lease, KeyLease) and isinstance(other, KeyLease)

    assert await lease.more_calls(5, 7) == 1  # one slot left of three: one call beside its own
    assert await pool.store.held([pool.slot_name(lease.key)]) == [3]
    await lease.release()
    assert await pool.store.held([pool.slot_name(lease.key)]) == [1]  # the other's alone
    assert pool.health[lease.key.fingerprint].in_flight == 1


async def test_more_calls_count_in_the_rpm_window(make_store: MakeStore) -> None:
    pool = pool_of(make_store, rpm=10)
    lease = await pool.lease("m")
    assert isinstance(lease, KeyLease)

    assert await lease.more_calls(4, 7) == 7  # no in-flight limit: all at once
    assert await pool.store.rates([pool.slot_name(lease.key)]) == [RateCount(5, 0)]
    await lease.release()


async def test_a_cancel_between_the_slots_taken_leaks_none(
    redis_proxy: RedisProxy, redis_url: str, redis_prefix: str
) -> None:
    """The caller leaves while `more_calls` takes its second slot (Redis granted the first): the
    first is the lease's, given back with it, not held to its TTL."""
    clock = ManualClock(start=600.0)
    through = RedisStateStore.from_url(redis_proxy.url, prefix=redis_prefix, clock=clock)
    direct = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    pool = pool_of(lambda _: through, max_in_flight=5)
    slot = [pool.slot_name(pool.keys[0])]
    try:
        lease = await pool.lease("m")
        assert isinstance(lease, KeyLease)
        redis_proxy.hold_replies()
        taking = asyncio.create_task(lease.more_calls(3, 3))
        await redis_proxy.held.wait()  # the first extra slot's reply, held back
        await redis_proxy.restore()  # it goes on (its waiter woken now)...
        redis_proxy.hold_replies()  # ...and the second's is held
        await redis_proxy.held.wait()
        taking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await taking
        await redis_proxy.restore()
        await lease.release()

        async def all_free() -> bool:
            return await direct.held(slot) == [0]

        await eventually(all_free, what="every slot given back")
        assert pool.health[lease.key.fingerprint].in_flight == 0
    finally:
        await through.aclose()
        await direct.aclose()


async def leased_900(make_store: MakeStore) -> tuple[KeyPool, KeyLease, str]:
    """A lease of a key with a tpm, for a request of 900 tokens; its key's rate slot name."""
    pool = pool_of(make_store, tpm=10_000)
    lease = await pool.lease("m", tokens=900)
    assert isinstance(lease, KeyLease)
    return pool, lease, pool.slot_name(lease.key)


async def test_a_resumed_lease_counts_its_share_of_the_estimate_and_of_the_usage(
    make_store: MakeStore,
) -> None:
    # Two of three calls sent under it (a failover resuming a split embedding): its tpm counts
    # 2/3 of the request's 900 tokens, then 2/3 of the 600 reported for the whole request.
    pool, lease, name = await leased_900(make_store)

    await lease.sends(2, 3)
    assert await pool.store.rates([name]) == [RateCount(1, 600)]
    await lease.settle_tokens(600)
    assert await pool.store.rates([name]) == [RateCount(1, 400)]
    await lease.release()


async def test_a_lease_that_failed_part_way_counts_the_share_it_sent(
    make_store: MakeStore,
) -> None:
    # Resumed with two of three calls, it fails after sending one: its tpm counts 1/3 of the
    # request's 900 tokens (the share of the whole, not of its 600), the next key the rest.
    pool, lease, name = await leased_900(make_store)

    await lease.sends(2, 3)
    await lease.sends(1, 3)
    assert await pool.store.rates([name]) == [RateCount(1, 300)]
    await lease.release()
    assert await pool.store.rates([name]) == [RateCount(1, 300)]  # kept as the key's
