"""Rate windows on clocks a few milliseconds apart around a minute's turn (replicas on one Redis;
one process whose wall clock NTP stepped back): a count from a clock still before the turn goes
in the minute a clock past it began. Each store wrote its minute back over that one, with
neither minute carried: every call of the minute just ended was forgotten."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import RateCount, RateWindows, SlotRequest
from tests.router_service.state.stores import MakeStore

TURN = 600.0  # window 10 begins
RPM = SlotRequest("k", 60, rpm=3, tpm=1000, tokens=100)


class Skewed(ManualClock):
    """One ManualClock read as another host's: `offset` seconds off."""

    offset = 0.0

    def now(self) -> float:
        return super().now() + self.offset


async def test_a_clock_behind_the_turn_counts_in_the_minute_begun(make_store: MakeStore) -> None:
    clock = Skewed(start=TURN)
    store = make_store(clock)
    clock.offset = -0.01
    for _ in range(3):
        assert (await store.acquire(RPM)).lease_id is not None  # in window 9
    clock.offset = 0.01
    assert (await store.acquire(RPM)).lease_id is None  # window 10: the 3 of 9 count whole
    clock.offset = -0.01
    behind = await store.acquire(RPM)
    assert behind.lease_id is None
    assert behind.window == 10
    assert behind.rate == RateWindows(TURN - 0.01, 10, 0.0, 0.0, 3.0, 300.0)
    assert await store.rates(["k"]) == [RateCount(3.0, 300.0)]  # read as counted, too


async def test_a_grant_behind_the_turn_is_corrected_in_the_minute_begun(
    make_store: MakeStore,
) -> None:
    clock = Skewed(start=TURN)
    store = make_store(clock)
    clock.offset = 0.01
    assert (await store.acquire(RPM)).window == 10
    clock.offset = -0.01
    grant = await store.acquire(RPM)
    assert (grant.lease_id is not None, grant.window) == (True, 10)
    await store.add_tokens("k", grant.window, -90, lease_id=grant.lease_id or "")
    assert await store.rates(["k"]) == [RateCount(2.0, 110.0)]
