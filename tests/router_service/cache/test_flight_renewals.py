"""A cluster flight's leader renewing its lease (`ClusterFlights.leading`), on real stores and a
ManualClock: by the runtime's one renewer of open calls' holds (a `FlightHold`; no task of the
call's own), every third of the lease while the block runs, never past the call's deadline; a
lease not its own any more (lapsed and taken) is never renewed back; an unreachable store (no
local fallback) is tried again at the next renewal, logged once, the block unharmed; the hold
ends with the block however it ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from router_service.cache._cluster import ClusterFlights, FlightHold
from router_service.clock import ManualClock
from router_service.engine import Afterwork, HoldRenewer
from router_service.state import MemoryStateStore, RedisStateStore, StateStore
from tests.helpers import eventually, free_port

LEASE_S = 3.0


def renewing(flights: ClusterFlights) -> list[FlightHold]:
    """The flight leases its renewer holds; and never a renewal task of a call's own."""
    assert [t for t in asyncio.all_tasks() if t.get_name() == "switchboard-flight-renewal"] == []
    return [hold for hold in flights._renewer._holds if isinstance(hold, FlightHold)]


async def _step(clock: ManualClock, flights: ClusterFlights, renewed: int) -> None:
    """Move the clock one renewal period on; until `renewed` renewals were made."""
    await asyncio.sleep(0)  # a turn of the loop: a renewer just started waits on the clock
    clock.advance(LEASE_S / 3)

    async def made() -> bool:  # and the renewer waits for its next round on the clock
        return flights.renewed == renewed and flights._renewer._waiting

    await eventually(made, what=f"{renewed} renewal(s)")


def _flights(store: StateStore, clock: ManualClock) -> ClusterFlights:
    renewer = HoldRenewer(clock, together=store.batches_concurrent_calls)
    return ClusterFlights(store, Afterwork(store), LEASE_S, clock, renewer)


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
        clock.advance(1.0)  # past the deadline: no renewal more, the hold ends by itself
        await eventually(lambda: _async(not renewing(flights)), what="the renewals ended")
        assert flights.renewed == 2 and await store.flight_left("n", token) == 0.0


async def test_a_taken_lease_is_never_renewed_back_and_the_hold_ends_with_the_block(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    flights = _flights(store, clock)
    token = (await store.claim_flight("n", LEASE_S)).token
    assert token
    with pytest.raises(RuntimeError), caplog.at_level(logging.WARNING, "switchboard.cache"):
        async with flights.leading("n", token, None):
            await _step(clock, flights, 1)
            clock.advance(LEASE_S)  # its renewal late past the lease: another took it
            successor = (await store.claim_flight("n", LEASE_S)).token
            assert successor
            for tries in (1, 2):  # not its own: never renewed back, the successor's unharmed
                await asyncio.sleep(0)
                clock.advance(LEASE_S / 3)
                await eventually(
                    lambda: _async(flights.unrenewed == tries and flights._renewer._waiting),  # noqa: B023
                    what=f"renewal {tries} refused",
                )
                assert (await store.claim_flight("n", LEASE_S)).holder == successor
            raise RuntimeError("the call failed")
    assert flights.renewed == 1 and renewing(flights) == []  # the hold ended with the block
    assert len([r for r in caplog.records if "not renewed" in r.getMessage()]) == 1  # once
    async with flights.leading("n", token, None):  # a block that ends at once: nothing left
        assert len(renewing(flights)) == 1
    assert renewing(flights) == []


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
                    lambda: _async(flights.unrenewed == tries and flights._renewer._waiting),  # noqa: B023
                    what=f"renewal {tries} refused",
                )
                assert len(renewing(flights)) == 1  # still renewing: not ended by the error
    finally:
        await store.aclose()
    assert (flights.unrenewed, flights.renewed, renewing(flights)) == (2, 0, [])


async def _async(value: bool) -> bool:
    return value
