"""Deadlines cleared on a condition (the StateStore contract, memory and Redis alike): a clear
replayed after an outage names the deadline its writer knew, and lifts no other."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import MemoryStateStore
from router_service.state._base import CLEARED_KEPT_S
from tests.router_service.state.stores import MakeStore


async def test_clear_deadline_only_while_it_is_the_one_named(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    known = await store.extend_deadline("off", clock.now() + 60.1)
    later = await store.extend_deadline("off", clock.now() + 3600.3)  # set since
    await store.clear_deadline("off", only=known)
    assert await store.deadlines(["off"]) == [later]
    await store.clear_deadline("off", only=later)
    assert await store.deadlines(["off"]) == [0.0]


async def test_a_deadline_decided_before_a_clear_and_written_late_does_not_land(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    decided = clock.now()  # a replica decides a disable while the store is unreachable
    clock.advance(30.0)
    await store.clear_deadline("off")  # another replica's enable, after it
    clock.advance(30.0)
    until = decided + 3600.0
    assert await store.extend_deadline("off", until, decided_at=decided) == 0.0
    assert await store.deadlines(["off"]) == [0.0]
    # One decided after the clear lands, written late or not.
    assert await store.extend_deadline("off", until, decided_at=clock.now()) == until
    assert await store.deadlines(["off"]) == [until]


async def test_a_clear_written_late_counts_from_when_it_was_decided(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    cleared = clock.now()
    clock.advance(30.0)
    decided = clock.now()  # after the clear was decided, before it was written
    clock.advance(30.0)  # (counted from when it is written, it would be after this one)
    await store.clear_deadline("off", decided_at=cleared)
    until = clock.now() + 60.0
    assert await store.extend_deadline("off", until, decided_at=decided) == until


async def test_a_clear_that_lifted_nothing_else_is_not_remembered(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    decided = clock.now()
    clock.advance(30.0)
    other = await store.extend_deadline("off", clock.now() + 600.0)
    await store.clear_deadline("off", only=other - 1.0)  # names another deadline: refused
    until = clock.now() + 3600.0
    assert await store.extend_deadline("off", until, decided_at=decided) == until


async def test_a_clear_not_remembered_lets_a_write_decided_before_it_land(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    decided = clock.now()  # an operator's disable, on a replica cut off from the store
    clock.advance(30.0)
    await store.clear_deadline("off", remember=False)  # a probe passed: no one's decision
    until = clock.now() + 3600.0
    assert await store.extend_deadline("off", until, decided_at=decided) == until
    assert await store.deadlines(["off"]) == [until]


async def test_a_clear_is_forgotten_a_week_after_it_was_decided_in_memory_too() -> None:
    # As Redis, where the clear's key lives `CLEARED_KEPT_S` from its decision (its TTL runs on
    # Redis's clock, not the test's: the memory store alone here).
    clock = ManualClock()
    store = MemoryStateStore(clock)
    decided = clock.now()  # a disable queued on a replica cut off for over a week
    clock.advance(30.0)
    await store.clear_deadline("off")
    clock.advance(CLEARED_KEPT_S)
    until = clock.now() + 3600.0
    assert await store.extend_deadline("off", until, decided_at=decided) == until
