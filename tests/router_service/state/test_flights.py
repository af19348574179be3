"""Flights in the state store (state/_flights.py), each store side by side: one claimer leads,
the others learn who and for how long, watchers hear how it landed (on Redis: from another
replica, through pub/sub), a lease ends with its owner's landing or by the clock."""

from __future__ import annotations

import asyncio

from router_service.clock import ManualClock
from router_service.state import (
    FlightClaim,
    Landing,
    MemoryStateStore,
    RedisStateStore,
    StateStore,
)
from tests.helpers import eventually
from tests.router_service.state.stores import MakeStore

# A landing's wait, on the store's clock (a ManualClock: it never ends by itself): what ends it
# is heard, or the clock moved past it; a wait that should have ended meets the hang guard, a
# clear failure, rather than pytest's timeout.
WAIT_S = 3600.0
HANG_GUARD_S = 15


def watching(store: StateStore) -> int:
    assert isinstance(store, MemoryStateStore | RedisStateStore)
    return store.flight_board.watching


async def test_one_claimer_leads_the_others_learn_who_and_for_how_long(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    lead = await store.claim_flight("n", 30)
    assert lead.token
    clock.advance(10)
    held = await store.claim_flight("n", 30)
    assert held == FlightClaim(None, lead.token, 20.0)
    assert (await store.claim_flight("other", 30)).token  # names are apart
    await store.land_flight("n", lead.token, Landing.KEPT)
    again = await store.claim_flight("n", 30)
    assert again.token and again.token != lead.token


async def test_a_lease_nobody_lands_ends_by_the_clock_and_its_late_landing_is_harmless(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    dead = await store.claim_flight("n", 30)
    clock.advance(29.5)
    assert (await store.claim_flight("n", 30)).token is None
    clock.advance(0.5)
    successor = await store.claim_flight("n", 30)
    assert dead.token and successor.token
    await store.land_flight("n", dead.token, Landing.EMPTY)  # not its lease any more: stays
    assert (await store.claim_flight("n", 30)).holder == successor.token


async def test_a_watcher_hears_the_holders_landing(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    lead = await store.claim_flight("n", 30)
    assert lead.token
    with store.watch_flight("n") as watch:
        claim = await store.claim_flight("n", 30)
        waiting = asyncio.create_task(watch.landing(claim.holder, WAIT_S))
        await store.land_flight("n", lead.token, Landing.KEPT)
        assert await asyncio.wait_for(waiting, HANG_GUARD_S) == Landing.KEPT
        assert watching(store) == 1
    assert watching(store) == 0


async def test_only_the_holders_own_failure_ends_a_wait(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    older = await store.claim_flight("n", 30)
    clock.advance(30)  # lapsed: another leads now
    lead = await store.claim_flight("n", 30)
    assert older.token and lead.token
    with store.watch_flight("n") as watch:
        claim = await store.claim_flight("n", 30)
        assert claim.holder == lead.token
        await store.land_flight("n", older.token, Landing.EMPTY)  # the older one's: not it
        await store.land_flight("other", lead.token, Landing.KEPT)  # another name's
        assert await watch.landing(claim.holder, 0.0) == Landing.LAPSED  # heard nothing
        await store.land_flight("n", lead.token, Landing.EMPTY)
        heard = watch.landing(claim.holder, WAIT_S)
        assert await asyncio.wait_for(heard, HANG_GUARD_S) == Landing.EMPTY


async def test_a_wait_lapses_when_the_stores_clock_reaches_the_end_of_the_lease(
    make_store: MakeStore,
) -> None:
    """What the lease has left is time on the store's clock (its expiry is): the wait ends when
    that clock moves past it, not before, however long it takes in real time."""
    clock = ManualClock()
    store = make_store(clock)
    lead = await store.claim_flight("n", 30)
    assert lead.token
    with store.watch_flight("n") as watch:
        claim = await store.claim_flight("n", 30)
        waiting = asyncio.ensure_future(watch.landing(claim.holder, claim.left_s))

        async def timed() -> bool:
            return any(w.when() == clock.monotonic() + 30 for w in clock.windows)

        await eventually(timed, what="the wait timed on the store's clock")
        clock.advance(29.5)
        await asyncio.sleep(0)  # a turn of the loop, not a wait for time
        assert not waiting.done()
        clock.advance(0.5)
        assert await asyncio.wait_for(waiting, HANG_GUARD_S) == Landing.LAPSED
    assert (await store.claim_flight("n", 30)).token  # the lease ended with it


async def test_a_landing_before_the_wait_began_is_heard(make_store: MakeStore) -> None:
    """The watch opens before the claim: a notice that overtakes the wait is kept for it."""
    store = make_store(ManualClock())
    lead = await store.claim_flight("n", 30)
    assert lead.token
    with store.watch_flight("n") as watch:
        claim = await store.claim_flight("n", 30)
        await store.land_flight("n", lead.token, Landing.KEPT)
        if isinstance(store, RedisStateStore):  # the notice comes on the subscriber
            await _heard(store, 1)
        assert await watch.landing(claim.holder, 0.0) == Landing.KEPT


async def _heard(store: RedisStateStore, count: int) -> None:
    async def heard() -> bool:
        return store.notices.heard >= count

    await eventually(heard, what=f"{count} landing notice(s) on the subscriber")


async def test_a_reader_that_claims_nothing_hears_each_change_after_it_rearms(
    make_store: MakeStore,
) -> None:
    """A follower of a growing document (a streamed background response's events) claims no
    flight: `hear_flights` subscribes it, and each landing wakes the wait that follows its
    `rearm` (what came before the rearm does not)."""
    store = make_store(ManualClock())
    with store.watch_flight("events") as watch:
        assert await store.hear_flights()
        await store.land_flight("events", "", Landing.KEPT)  # an append before the read
        if isinstance(store, RedisStateStore):
            await _heard(store, 1)
        watch.rearm()
        assert not await watch.notified(0.0)  # forgotten: the read saw it
        await store.land_flight("events", "", Landing.KEPT)  # an append after the read
        assert await asyncio.wait_for(watch.notified(WAIT_S), HANG_GUARD_S)
        watch.rearm()
        await store.land_flight("other", "", Landing.KEPT)
        if isinstance(store, RedisStateStore):  # both notices came on the subscriber
            await _heard(store, 3)
        assert not await watch.notified(0.0)  # another name's
