"""A lease under way across a reload that renamed its provider (`keys.carry_slots`): its slot,
the more it takes (`KeyLease.more_calls`), its token corrections and its renewals are where the
renamed pool counts them; given back there. On each store (memory, Redis)."""

from __future__ import annotations

from router_service.keys import KeyLease, KeyPool, carry_slots
from tests.router_service.keys.test_lease_calls import pool_of
from tests.router_service.state.conftest import redis_prefix, redis_url
from tests.router_service.state.stores import MakeStore, make_store

__all__ = ["make_store", "redis_prefix", "redis_url"]


def _renamed(pool: KeyPool) -> KeyPool:
    """A reload's pool of the same keys under another provider name, on the same store."""
    heir = KeyPool(
        "renamed",
        [],
        store=pool.store,
        clock=pool.clock,
        cooldowns=pool.cooldowns,
        lease_ttl_s=pool.lease_ttl_s,
    )
    heir.keys, heir.health = pool.keys, pool.health
    return heir


async def test_a_lease_across_a_rename_counts_and_ends_under_the_new_name(
    make_store: MakeStore,
) -> None:
    pool = pool_of(make_store, max_in_flight=4, rpm=10, tpm=1000)
    lease = await pool.lease("m", tokens=100)
    assert isinstance(lease, KeyLease)
    heir = _renamed(pool)
    await carry_slots(heir, pool)
    pool.hand_over(heir)
    (key,) = pool.keys
    names = [pool.slot_name(key), heir.slot_name(key)]

    assert await pool.store.held(names) == [0, 1]
    assert await lease.more_calls(3, at_once=2) == 2  # beside it, under the new name
    assert await pool.store.held(names) == [0, 3]
    await lease.settle_tokens(40)
    assert await lease.renew()
    (old, new) = await pool.store.rates(names)
    assert (old.requests, old.tokens) == (0, 0)
    assert (new.requests, new.tokens) == (4, 40)  # its call and the 3 more; its usage
    await lease.release()
    assert await pool.store.held(names) == [0, 0]
    assert isinstance(await pool.lease("m"), KeyLease)  # the heir leases: "renamed"'s slot
    assert await pool.store.held(names) == [0, 1]


async def test_a_lease_on_a_key_the_rename_removed_counts_where_its_slot_stayed(
    make_store: MakeStore,
) -> None:
    """The provider renamed with this key left out (its slot not moved: the replicas still on
    the old name count it there): the more calls and slots of a lease under way on it are
    counted beside its slot, under the old name, against its `max_in_flight` and `rpm`."""
    pool = pool_of(make_store, max_in_flight=2, rpm=10, tpm=1000)
    lease = await pool.lease("m", tokens=100)
    assert isinstance(lease, KeyLease)
    heir = _renamed(pool)
    heir.keys, heir.health = [], {}  # the key is not the renamed provider's
    await carry_slots(heir, pool)
    pool.hand_over(heir)
    (key,) = pool.keys
    names = [pool.slot_name(key), heir.slot_name(key)]

    assert await lease.more_calls(3, at_once=2) == 1  # one slot of two left, beside its own
    assert await pool.store.held(names) == [2, 0]
    await lease.settle_tokens(40)
    (old, new) = await pool.store.rates(names)
    assert (old.requests, old.tokens) == (4, 40)
    assert (new.requests, new.tokens) == (0, 0)
    await lease.release()
    assert await pool.store.held(names) == [0, 0]
