"""Routing results are added up in the process and written at most every `stats_flush_s`: one
store write per deployment and bucket instead of one per request, and a replica's own reads always
include what it counted."""

from __future__ import annotations

import logging
import random

import pytest

from router_service.clock import ManualClock
from router_service.config import RoutingConfig
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.routing import RoutingStats, order
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat


class CountingStore(MemoryStateStore):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.writes: list[tuple[str, dict[str, float]]] = []

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        self.writes.append((name, dict(counts)))
        return await super().add_to_bucket(name, bucket, counts, ttl_s, at=at)


async def test_results_are_written_together_and_read_at_once() -> None:
    clock = ManualClock()
    store = CountingStore(clock)
    stats = RoutingStats(store, clock, RoutingConfig(stats_flush_s=1.0))
    for _ in range(30):
        await stats.record("a", True)
    await stats.record("a", False)
    await stats.record("b", True)
    assert store.writes == []  # nothing written within the interval
    a, b = await stats.read(["a", "b"])  # a read counts them, unwritten
    assert (a.successes, a.failures, b.successes) == (30, 1, 1)
    assert store.writes == []
    await stats.flush()  # the admin view's read writes them first
    assert sorted(store.writes) == [("stats:a", {"s": 30.0, "f": 1.0}), ("stats:b", {"s": 1.0})]
    a, b = await stats.read(["a", "b"])  # written: counted once
    assert (a.successes, a.failures, b.successes) == (30, 1, 1)

    store.writes.clear()
    await stats.record("a", True)
    clock.advance(1.0)
    await stats.record("a", True)  # the interval has passed: both go out in one write
    assert store.writes == [("stats:a", {"s": 2.0})]


async def test_thompson_routing_writes_its_results_together_too() -> None:
    # A thompson group reads the statistics at every request: its own results count at once,
    # and are still written together (a read wrote each one, a round trip per request).
    clock = ManualClock()
    store = CountingStore(clock)
    stats = RoutingStats(store, clock, RoutingConfig(stats_flush_s=1.0))
    await stats.record("b", True)
    clock.advance(1.0)
    await stats.record("b", True)  # written, and one more unwritten beside it
    store.writes.clear()
    rng = random.Random(3)
    for _ in range(50):
        await order("thompson", ["a", "b"], [1.0, 1.0], stats, rng)
        await stats.record("a", False)
    assert store.writes == []
    a, b = await stats.read(["a", "b"])
    assert (a.failures, b.successes) == (50, 2)
    indices, _ = await order("thompson", ["a", "b"], [1.0, 1.0], stats, rng)
    assert indices[0] == 1  # 50 failures unwritten are counted against it


async def test_zero_writes_every_result_and_flush_writes_the_rest() -> None:
    clock = ManualClock()
    store = CountingStore(clock)
    stats = RoutingStats(store, clock, RoutingConfig(stats_flush_s=0))
    await stats.record("a", True)
    await stats.record("a", False)
    assert store.writes == [("stats:a", {"s": 1.0}), ("stats:a", {"f": 1.0})]

    later = RoutingStats(store, clock, RoutingConfig(stats_flush_s=60))
    await later.record("b", True)
    await later.flush()  # what shutdown does
    await later.flush()  # nothing left: no second write
    assert store.writes[-1] == ("stats:b", {"s": 1.0}) and len(store.writes) == 3


async def test_results_nobody_follows_are_written_by_a_timer_and_at_close() -> None:
    clock = ManualClock()  # standing still: only the timer can write
    store = CountingStore(clock)
    stats = RoutingStats(store, clock, RoutingConfig(stats_flush_s=0.01))
    await stats.record("a", True)

    async def written() -> bool:  # polled: the timer's flush is a task of its own, unseen
        return bool(store.writes)

    await eventually(written, what="the timer's flush")
    assert store.writes == [("stats:a", {"s": 1.0})]

    late = RoutingStats(store, clock, RoutingConfig(stats_flush_s=60))
    await late.record("b", True)
    await late.aclose()  # what a stopping router does: written, and no timer left behind
    await late.aclose()
    assert store.writes[-1] == ("stats:b", {"s": 1.0}) and len(store.writes) == 2
    assert late._timer is None


class LostStatsStore(MemoryStateStore):
    """Memory state whose statistics writes fail (the state store lost)."""

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        if name.startswith("stats:"):
            raise StoreUnavailableError("redis: connection lost")
        return await super().add_to_bucket(name, bucket, counts, ttl_s, at=at)


async def test_an_answer_stands_when_writing_its_statistics_fails(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    # Written with the call's result (`stats_flush_s: 0`): the answer is the caller's whatever
    # becomes of the statistics (the next flush writes the next ones).
    config = base_config(fake.base_url, routing={"stats_flush_s": 0})
    router = await start_router(config, store=LostStatsStore())
    with caplog.at_level(logging.WARNING):
        answer = await router.stub.Chat(chat())
    assert answer.completion.choices[0].message.text
    assert "writing routing statistics failed" in caplog.text
