"""A flight's lease renewed by its leader (`StateStore.renew_flight`), each store side by side:
a renewed lease holds past its first TTL, on the store's clock and (on Redis) past the key's own
expiry; only the owner's lease is renewed (not one landed, nor one lapsed and claimed again);
an unreachable Redis renews nothing (False: not counted as a renewal), and the leader tries again
at its next one. What a lease has left is
read without claiming it (`flight_left`): 0 once it ran out, landed or was claimed again."""

from __future__ import annotations

import redis

from router_service.clock import ManualClock
from router_service.state import Landing, MemoryStateStore, RedisStateStore, ResilientStateStore
from tests.helpers import free_port
from tests.router_service.state.stores import MakeStore


async def test_a_renewed_lease_holds_past_its_first_ttl(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    lead = await store.claim_flight("n", 3)
    assert lead.token
    clock.advance(2)
    assert await store.renew_flight("n", lead.token, 3)  # now it ends 3 s from here
    clock.advance(2)  # past the first TTL
    held = await store.claim_flight("n", 3)
    assert (held.token, held.holder, held.left_s) == (None, lead.token, 1.0)
    clock.advance(1)  # not renewed again: it lapses (its leader died)
    successor = await store.claim_flight("n", 3)
    assert successor.token
    assert not await store.renew_flight("n", lead.token, 3)  # not its lease any more
    assert (await store.claim_flight("n", 3)).holder == successor.token


async def test_a_landed_lease_is_not_renewed_back(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    lead = await store.claim_flight("n", 3)
    assert lead.token
    await store.land_flight("n", lead.token, Landing.KEPT)
    assert not await store.renew_flight("n", lead.token, 3)
    assert (await store.claim_flight("n", 3)).token  # free: nothing holds it
    assert not await store.renew_flight("other", lead.token, 3)  # no lease of that name


async def test_what_a_lease_has_left_is_read_without_claiming_it(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    lead = await store.claim_flight("n", 3)
    assert lead.token
    clock.advance(1)
    assert await store.flight_left("n", lead.token) == 2.0
    assert await store.flight_left("n", "another") == 0.0  # not that lease
    assert await store.flight_left("other", lead.token) == 0.0  # no lease of that name
    assert await store.renew_flight("n", lead.token, 3)
    assert await store.flight_left("n", lead.token) == 3.0
    clock.advance(3)
    assert await store.flight_left("n", lead.token) == 0.0  # ran out unrenewed
    successor = await store.claim_flight("n", 3)  # the read claimed nothing: free to take
    assert successor.token
    assert await store.flight_left("n", lead.token) == 0.0
    await store.land_flight("n", successor.token, Landing.KEPT)
    assert await store.flight_left("n", successor.token) == 0.0


async def test_a_renewal_moves_the_redis_keys_own_expiry(redis_url: str, redis_prefix: str) -> None:
    """Redis drops a lease key a little after its TTL: a renewal sets it anew, else a slow call's
    lease would vanish under it in real time whatever the expiry it carries."""
    store = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=ManualClock())
    direct = redis.Redis.from_url(redis_url)
    try:
        lead = await store.claim_flight("n", 1)
        assert lead.token
        key = f"{redis_prefix}:flt:n"
        assert 0 < int(direct.pttl(key)) <= 2000
        assert await store.renew_flight("n", lead.token, 60)
        assert int(direct.pttl(key)) > 50_000
    finally:
        direct.close()
        await store.aclose()


async def test_an_unreachable_redis_renews_nothing() -> None:
    clock = ManualClock()
    shared = RedisStateStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="t", clock=clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock)
    try:
        assert await store.renew_flight("n", "t.1", 3) is False  # not renewed: not counted
        assert store.degraded
        assert await store.renew_flight("n", "t.1", 3) is False  # degraded: not tried
        assert await store.flight_left("n", "t.1") == 0.0  # its log is out of reach too: go alone
    finally:
        await store.aclose()
