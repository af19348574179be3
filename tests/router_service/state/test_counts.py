"""The StateStore contract for counts (a key × model's 429 strikes, every replica's): each
store (memory, Redis) counts up, forgets at its TTL by the ManualClock, and clears alike."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import MemoryStateStore, ResilientStateStore
from tests.router_service.state.stores import MakeStore
from tests.router_service.state.test_redis_fallback import Flaky


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


async def test_a_count_restarts_after_a_success_and_a_late_clear_keeps_later_counts(
    make_store: MakeStore,
) -> None:
    """`restart_if_before` (a success of the caller's): a count whose streak began before it
    counts from 0 (counted since by another or not), one begun since goes on. `up_to` (a
    clear replayed late): only a count last counted by then goes."""
    clock = ManualClock(100.0)
    store = make_store(clock)
    assert [await store.add_count("c", 60) for _ in range(2)] == [1, 2]
    clock.advance(1.0)
    assert await store.add_count("c", 60, restart_if_before=100.5) == 1  # a success between
    assert await store.add_count("c", 60, restart_if_before=100.5) == 2  # none since
    assert await store.add_count("c", 60, restart_if_before=101.0) == 3  # at its first: on
    clock.advance(1.0)
    assert await store.add_count("c", 60) == 4  # another's, not seeing the success
    assert await store.add_count("c", 60, restart_if_before=101.5) == 1  # it began before
    clock.advance(1.0)
    await store.clear_count("c", up_to=100.5)  # counted since: kept
    assert await store.add_count("c", 60) == 2
    await store.clear_count("c", up_to=clock.now())
    assert await store.add_count("c", 60) == 1


class FlakyCounts(Flaky):
    """Flaky's shared store, its counts unreachable too."""

    async def add_count(self, name: str, ttl_s: float, *, restart_if_before: float = 0.0) -> int:
        self._check()
        return await super().add_count(name, ttl_s, restart_if_before=restart_if_before)

    async def clear_count(self, name: str, *, up_to: float | None = None) -> None:
        self._check()
        await super().clear_count(name, up_to=up_to)


async def test_a_resilient_store_counts_on_the_shared_one_else_locally() -> None:
    """Counted on the shared store while it answers (every replica's strikes together); in an
    outage on this replica's own, on from what it knew there (a key's backoff does not start
    over), and a clear made then reaches the shared one when it is back."""
    clock = ManualClock()
    shared, local = FlakyCounts(clock), MemoryStateStore(clock)
    store = ResilientStateStore(shared, local, clock=clock, retry_interval_s=1.0)
    assert [await store.add_count("c", 60) for _ in range(2)] == [1, 2]
    shared.up = False
    assert await store.add_count("c", 60) == 3  # this replica's own count, on from the shared
    await store.clear_count("c")
    shared.up = True
    clock.advance(1.0)
    assert await store.add_count("c", 60) == 1  # the clear replayed first: from 0
    shared.up = False
    await store.clear_count("c")
    clock.advance(0.5)
    shared.up = True
    assert await shared.add_count("c", 60) == 2  # another replica's, after the clear
    clock.advance(1.0)
    assert await store.add_count("c", 60) == 3  # the clear replayed: it kept that one
