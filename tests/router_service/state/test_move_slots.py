"""`StateStore.move_slots`: a slot's holds and rate windows moved to another name in one step (a
provider renamed by a reload, `keys.carry_slots`), on every store alike (memory, Redis: the
contract's `make_store`), another replica's holds left where it releases them (Redis), and the
outage wrapper's local holds moved locally."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import RATE_WINDOW_S, RedisStateStore, SlotRequest, sliding_count
from tests.router_service.state.stores import MakeStore
from tests.router_service.state.test_redis_fallback import resilient


async def test_moved_holds_and_windows_count_under_the_new_name(make_store: MakeStore) -> None:
    clock = ManualClock(100 * RATE_WINDOW_S)  # a minute's start
    store = make_store(clock)
    limited = SlotRequest("old", 300, max_in_flight=3, rpm=10, tpm=1000, tokens=100)
    first = (await store.acquire(limited)).lease_id
    clock.advance(RATE_WINDOW_S)  # the first in the previous window now
    second = (await store.acquire(limited)).lease_id
    assert first is not None and second is not None
    await store.acquire(SlotRequest("new", 300, max_in_flight=3, rpm=10, tokens=50))
    clock.advance(RATE_WINDOW_S / 4)
    await store.move_slots("old", "new")

    assert await store.held(["old", "new"]) == [0, 3]
    (old, new) = await store.rates(["old", "new"])
    assert (old.requests, old.tokens) == (0, 0)
    share = 1 - (clock.now() - 101 * RATE_WINDOW_S) / RATE_WINDOW_S
    assert new.requests == sliding_count(1, 2, clock.now(), 101) == 2 + share
    assert new.tokens == 150 + 100 * share
    refused = await store.acquire(SlotRequest("new", 30, max_in_flight=3))
    assert refused.lease_id is None  # the moved holds count against its limit
    assert await store.renew("new", first, 30)
    await store.release("new", first)
    await store.release("new", second)
    assert await store.held(["new"]) == [1]
    await store.move_slots("nothing", "new")  # nothing to move: nothing changes
    assert await store.held(["new"]) == [1]


async def test_another_replicas_holds_stay_where_it_releases_them(
    redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    this, other = (
        RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock) for _ in range(2)
    )
    try:
        mine = (await this.acquire(SlotRequest("old", 30, 2))).lease_id
        theirs = (await other.acquire(SlotRequest("old", 30, 2))).lease_id
        assert mine is not None and theirs is not None
        await this.move_slots("old", "new")

        assert await this.held(["old", "new"]) == [1, 1]
        await other.release("old", theirs)
        await this.release("new", mine)
        assert await other.held(["old", "new"]) == [0, 0]
    finally:
        await this.aclose()
        await other.aclose()


async def test_the_outage_wrapper_moves_local_holds_locally() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    on_shared = (await store.acquire(SlotRequest("old", 30, 2))).lease_id
    shared.up = False
    local = (await store.acquire(SlotRequest("old", 30, 2))).lease_id
    assert on_shared is not None and local is not None and local.startswith("~")
    await store.move_slots("old", "new")  # the shared store's are left: freed by their TTL
    assert await store.held(["old", "new"]) == [0, 1]  # the local store's, while it is down
    await store.release("new", local)
    assert await store.held(["new"]) == [0]
