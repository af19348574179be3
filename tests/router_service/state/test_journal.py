"""Journal: the writes an outage queued, bounded, replayed in order, none lost to a failure."""

from __future__ import annotations

import logging

import pytest

from router_service.clock import ManualClock
from router_service.state import StoreUnavailableError
from router_service.state._journal import Journal, expiring


async def test_writes_are_replayed_in_order_and_the_oldest_dropped_past_the_bound() -> None:
    done: list[int] = []
    journal = Journal(max_writes=3)

    def write(n: int) -> None:
        async def run() -> None:
            done.append(n)

        journal.add("write", run)

    for n in range(5):
        write(n)
    assert (len(journal), journal.dropped) == (3, 2)
    assert await journal.replay() == 3
    assert done == [2, 3, 4] and len(journal) == 0


async def test_a_write_that_fails_stays_first_for_the_next_replay() -> None:
    done: list[str] = []
    journal = Journal()
    up = False

    async def first() -> None:
        if not up:
            raise StoreUnavailableError("redis: Connection refused")
        done.append("first")

    async def second() -> None:
        done.append("second")

    journal.add("first", first)
    journal.add("second", second)
    with pytest.raises(StoreUnavailableError):
        await journal.replay()
    assert len(journal) == 2 and done == []
    up = True
    assert await journal.replay() == 2
    assert done == ["first", "second"]


async def test_a_write_the_store_refuses_is_dropped_and_the_others_replayed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    journal = Journal(name="shared state")

    async def refused() -> None:
        raise StoreUnavailableError("redis: WRONGTYPE Operation against a key", refused="WRONGTYPE")

    async def second() -> None:
        done.append("second")

    journal.add("release", refused)
    journal.add("leave", second)
    with caplog.at_level(logging.WARNING, logger="switchboard.state"):
        assert await journal.replay() == 1
    assert done == ["second"] and len(journal) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "shared state refused a queued release (WRONGTYPE): dropped, not tried again"
    ]


async def test_a_value_replayed_late_ends_when_it_would_have() -> None:
    clock = ManualClock()
    written: list[float] = []

    async def set_value(ttl_s: float) -> None:
        written.append(ttl_s)

    journal = Journal()
    journal.add(
        "set_value", expiring(clock, 60.0, set_value)
    )  # written during an outage, for a minute
    journal.add("set_value", expiring(clock, 10.0, set_value))  # for ten seconds
    clock.advance(15.0)  # the store answers again
    assert await journal.replay() == 2
    assert written == [45.0]  # what is left of the first; the second is over, not written
