"""The StateStore contract for counts (a key × model's 429 strikes, every replica's): each
store (memory, Redis) counts up, forgets at its TTL by the ManualClock, and clears alike."""

from __future__ import annotations

from router_service.clock import ManualClock
from tests.router_service.state.stores import MakeStore


async def test_counts_add_up_expire_and_clear(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert [await store.add_count("c", 10) for _ in range(3)] == [1, 2, 3]
    assert await store.add_count("other", 10) == 1
    clock.advance(9.5)
    assert await store.add_count("c", 10) == 4  # each count keeps it 10 s more
    clock.advance(10.0)
    assert await store.add_count("c", 10) == 1  # past its TTL: from 0
    await store.clear_count("c")
    await store.clear_count("never-counted")  # harmless
    assert await store.add_count("c", 10) == 1
    assert await store.add_count("other", 10) == 1  # expired meanwhile
