"""Deadlines cleared on a condition (the StateStore contract, memory and Redis alike): a clear
replayed after an outage names the deadline its writer knew, and lifts no other."""

from __future__ import annotations

from router_service.clock import ManualClock
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
