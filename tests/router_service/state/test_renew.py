"""`StateStore.renew`: a slot held longer than its TTL (a realtime session's key lease and stream
slot) is renewed in place, on every store alike (memory, Redis: the contract's `make_store`;
the outage wrapper: its local leases locally, the shared ones while the shared store answers)."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import SlotRequest
from tests.router_service.state.stores import MakeStore
from tests.router_service.state.test_redis_fallback import resilient


async def test_a_renewed_slot_outlives_its_ttl_and_a_lost_one_is_not_taken_again(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    lease = (await store.acquire(SlotRequest("r", 30, 1))).lease_id
    assert lease is not None
    for _ in range(4):  # 80 s on a 30 s TTL, renewed every 20 s
        clock.advance(20)
        assert await store.renew("r", lease, 30)
    assert await store.held(["r"]) == [1]
    assert (await store.acquire(SlotRequest("r", 30, 1))).lease_id is None
    assert await store.renew("r", lease, 5)  # never earlier than it was: 30 s left
    clock.advance(29)
    assert await store.held(["r"]) == [1]
    clock.advance(1)  # not renewed in time: gone, and a renewal does not take it back
    assert not await store.renew("r", lease, 30)
    assert await store.held(["r"]) == [0]
    other = (await store.acquire(SlotRequest("r", 30, 1))).lease_id
    assert other is not None
    await store.release("r", other)
    assert not await store.renew("r", other, 30)  # released
    assert not await store.renew("nothing", "no-such-lease", 30)
    assert await store.held(["r", "nothing"]) == [0, 0]


async def test_the_outage_wrapper_renews_where_the_slot_was_taken() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    on_shared = (await store.acquire(SlotRequest("r", 30))).lease_id
    assert on_shared is not None
    clock.advance(20)
    assert await store.renew("r", on_shared, 30)  # until 50 s
    shared.up = False
    local = (await store.acquire(SlotRequest("r", 30))).lease_id
    assert local is not None and local.startswith("~")
    # The shared one cannot be asked: kept as held (its next renewal asks again).
    assert await store.renew("r", on_shared, 30)
    clock.advance(20)
    assert await store.renew("r", local, 30)
    assert await store.held(["r"]) == [1]  # the local one only, renewed
    shared.up = True
    clock.advance(1)  # past the retry interval: the shared store is asked again
    assert await store.renew("r", on_shared, 30) and not store.degraded
    assert await shared.held(["r"]) == [1]
    clock.advance(31)
    assert not await store.renew("r", on_shared, 30)  # the shared store says it expired
    assert not await store.renew("r", local, 30)
