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


async def test_windows_moved_behind_the_turn_keep_the_minute_begun(make_store: MakeStore) -> None:
    """A provider renamed (`move_slots`) by a replica whose clock has not reached the turn:
    the windows a replica past it began, the source's and the target's, move whole."""
    clock = Skewed(start=TURN)
    store = make_store(clock)
    clock.offset = -0.01
    for _ in range(2):
        await store.acquire(SlotRequest("old", 60, rpm=10, tpm=1000, tokens=100))  # window 9
    clock.offset = 0.01
    await store.acquire(SlotRequest("old", 60, rpm=10, tpm=1000, tokens=100))  # window 10
    await store.acquire(SlotRequest("new", 60, rpm=10, tpm=1000, tokens=50))
    clock.offset = -0.01
    await store.move_slots("old", "new")
    assert await store.rates(["old", "new"]) == [RateCount(), RateCount(4.0, 350.0)]


async def test_a_window_moved_behind_the_turn_to_a_new_name_is_kept(
    make_store: MakeStore,
) -> None:
    clock = Skewed(start=TURN)
    store = make_store(clock)
    clock.offset = 0.01
    await store.acquire(SlotRequest("old", 60, rpm=10, tpm=1000, tokens=100))  # window 10
    clock.offset = -0.01
    await store.move_slots("old", "new")
    assert await store.rates(["old", "new"]) == [RateCount(), RateCount(1.0, 100.0)]
    clock.offset = 0.01
    assert await store.rates(["new"]) == [RateCount(1.0, 100.0)]  # in window 10, as counted


async def test_the_minute_just_ended_weighs_no_more_than_whole_behind_the_turn(
    make_store: MakeStore,
) -> None:
    """A clock behind the minute it counts in reads the minute before it whole, never more:
    a call that fills tpm exactly is admitted by both stores alike."""
    clock = Skewed(start=TURN)
    store = make_store(clock)
    clock.offset = -0.01
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=300))).window == 9
    clock.offset = 0.01
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=0))).window == 10
    clock.offset = -0.01
    fills = await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=700))
    assert (fills.lease_id is not None, fills.window) == (True, 10)
    assert await store.rates(["k"]) == [RateCount(3.0, 1000.0)]
