"""A cluster flight's leader renewing its lease (`ClusterFlights.leading`), on real stores and a
ManualClock: every third of the lease while the block runs, never past the call's deadline;
it stops once the lease is not its own (lapsed and taken); an unreachable store (no local
fallback) is tried again at the next renewal, the block unharmed; the task ends with the
block however it ends."""

from __future__ import annotations

import asyncio

import pytest

from router_service.cache._cluster import ClusterFlights
from router_service.clock import ManualClock
from router_service.engine import Afterwork
from router_service.state import MemoryStateStore, RedisStateStore, StateStore
from tests.helpers import eventually, free_port

LEASE_S = 3.0


def renewing() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "switchboard-flight-renewal"]


async def _step(clock: ManualClock, flights: ClusterFlights, renewed: int) -> None:
    """Move the clock one renewal period on; until `renewed` renewals were made."""
    await asyncio.sleep(0)  # a turn of the loop: a renewal task just made waits on the clock
    clock.advance(LEASE_S / 3)

    async def made() -> bool:
        return flights.renewed == renewed

    await eventually(made, what=f"{renewed} renewal(s)")


def _flights(store: StateStore, clock: ManualClock) -> ClusterFlights:
    return ClusterFlights(store, Afterwork(store), LEASE_S, clock)


async def test_renewals_reach_no_further_than_the_calls_deadline() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    flights = _flights(store, clock)
    token = (await store.claim_flight("n", LEASE_S)).token
    assert token
    async with flights.leading("n", token, 2.5):  # a deadline 2.5 s away
        await _step(clock, flights, 1)
        assert await store.flight_left("n", token) == pytest.approx(1.5)  # to the deadline
        await _step(clock, flights, 2)
        assert await store.flight_left("n", token) == pytest.approx(0.5)
        clock.advance(1.0)  # past the deadline: no renewal more, the task ends by itself
        await eventually(lambda: _async(not renewing()), what="the renewals ended")
        assert flights.renewed == 2 and await store.flight_left("n", token) == 0.0


async def test_renewals_stop_once_the_lease_is_taken_and_end_with_the_block() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    flights = _flights(store, clock)
    token = (await store.claim_flight("n", LEASE_S)).token
    assert token
    with pytest.raises(RuntimeError):
        async with flights.leading("n", token, None):
            await _step(clock, flights, 1)
            clock.advance(LEASE_S)  # its renewal late past the lease: another took it
            assert (await store.claim_flight("n", LEASE_S)).token
            await eventually(lambda: _async(not renewing()), what="the renewals stopped")
            raise RuntimeError("the call failed")
    assert flights.renewed == 1 and renewing() == []
    async with flights.leading("n", token, None):  # a block that ends at once: nothing left
        assert len(renewing()) == 1
    assert renewing() == []


async def test_an_unreachable_store_is_tried_again_at_the_next_renewal() -> None:
    clock = ManualClock()
    store = RedisStateStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="t", clock=clock)
    flights = _flights(store, clock)
    try:
        async with flights.leading("n", "t.1", None):
            for tries in (1, 2):
                await asyncio.sleep(0)  # a turn of the loop: the task waits on the clock
                clock.advance(LEASE_S / 3)
                await eventually(
                    lambda: _async(flights.unrenewed == tries),  # noqa: B023
                    what=f"renewal {tries} refused",
                )
                assert len(renewing()) == 1  # still renewing: not ended by the error
    finally:
        await store.aclose()
    assert (flights.unrenewed, flights.renewed, renewing()) == (2, 0, [])


async def _async(value: bool) -> bool:
    return value
