"""Strategies over real statistics, with an injected clock and seeded randomness."""

from __future__ import annotations

import random
from collections import Counter

from router_service.clock import ManualClock
from router_service.config import RoutingConfig
from router_service.routing import RoutingStats, order
from router_service.state import MemoryStateStore

NAMES = ["best", "good", "poor"]


def make_stats(clock: ManualClock) -> RoutingStats:
    return RoutingStats(MemoryStateStore(clock), clock, RoutingConfig())


async def simulate(
    stats: RoutingStats,
    clock: ManualClock,
    rates: dict[str, float],
    requests: int,
    rng: random.Random,
) -> list[str]:
    """Each request goes to the strategy's first choice and succeeds with that one's rate."""
    chosen = []
    for _ in range(requests):
        indices, _ = await order("thompson", NAMES, [1.0] * 3, stats, rng)
        name = NAMES[indices[0]]
        chosen.append(name)
        await stats.record(name, rng.random() < rates[name])
        clock.advance(60.0)  # a request a minute: decay matters over the simulation
    return chosen


async def test_thompson_finds_the_best_and_moves_away_when_it_degrades() -> None:
    clock = ManualClock()
    stats = make_stats(clock)
    rng = random.Random(1234)
    rates = {"best": 0.95, "good": 0.80, "poor": 0.50}

    await simulate(stats, clock, rates, 300, rng)  # warm-up
    steady = Counter(await simulate(stats, clock, rates, 500, rng))
    assert steady["best"] / 500 >= 0.80

    rates["best"] = 0.30
    after = await simulate(stats, clock, rates, 600, rng)
    # Within a bounded number of requests the degraded deployment loses the majority.
    window = 50
    shares = [
        after[i : i + window].count("best") / window for i in range(0, len(after) - window, 10)
    ]
    moved_at = next(i for i, share in enumerate(shares) if share < 0.5) * 10
    assert moved_at <= 400
    assert after[-100:].count("best") < 30


async def test_old_results_weigh_less_and_raw_counts_stay_visible() -> None:
    clock = ManualClock()
    stats = make_stats(clock)
    for _ in range(10):
        await stats.record("a", False)
    clock.advance(6 * 86400.0)  # six of seven days later
    for _ in range(10):
        await stats.record("a", True)
    (a,) = await stats.read(["a"])
    assert (a.successes, a.failures) == (10, 10)
    assert a.alpha > 4 * a.beta  # recent successes outweigh old failures
    assert a.beta >= 0.1  # floored
    clock.advance(2 * 86400.0)
    (a,) = await stats.read(["a"])
    assert a.failures == 0  # the old bucket aged out of the window


async def test_weighted_follows_weights() -> None:
    clock = ManualClock()
    stats = make_stats(clock)
    rng = random.Random(5)
    firsts: Counter[int] = Counter()
    for _ in range(2000):
        indices, _ = await order("weighted", ["a", "b"], [3.0, 1.0], stats, rng)
        firsts[indices[0]] += 1
    assert 0.70 <= firsts[0] / 2000 <= 0.80


async def test_weighted_follows_small_weights_too() -> None:
    # Only their ratio counts: 0.001 and 0.002 share as 1 and 2 do (each draw raised to the
    # 1000th power underflowed to a tie, which the first listed won).
    stats = make_stats(ManualClock())
    rng = random.Random(7)
    firsts: Counter[int] = Counter()
    for _ in range(4000):
        indices, _ = await order("weighted", ["a", "b"], [0.001, 0.002], stats, rng)
        firsts[indices[0]] += 1
    assert 0.30 <= firsts[0] / 4000 <= 0.37


async def test_latency_prefers_faster_without_stampeding() -> None:
    clock = ManualClock()
    stats = make_stats(clock)
    for name, seconds in {"a": 0.1, "b": 0.2, "c": 0.9}.items():
        stats.observe_latency(name, seconds)
    rng = random.Random(9)
    firsts: Counter[int] = Counter()
    for _ in range(3000):
        indices, scores = await order("latency", ["a", "b", "c"], [1.0] * 3, stats, rng)
        firsts[indices[0]] += 1
    assert scores["a"] < scores["b"] < scores["c"]
    # Two random choices: the fastest wins 2/3 of draws, the middle 1/3, the slowest never.
    assert abs(firsts[0] / 3000 - 2 / 3) < 0.05
    assert abs(firsts[1] / 3000 - 1 / 3) < 0.05
    assert firsts[2] == 0


async def test_latency_explores_an_unmeasured_deployment_without_preferring_it() -> None:
    """A deployment with no successful call yet (no latency measured) is drawn as the average of
    the measured ones: tried, and so measured, but not first in every draw it is in (one that
    never succeeds would be preferred for good)."""
    stats = make_stats(ManualClock())
    for name, seconds in {"a": 0.1, "b": 0.9}.items():
        stats.observe_latency(name, seconds)
    rng = random.Random(11)
    firsts: Counter[int] = Counter()
    for _ in range(3000):
        indices, scores = await order("latency", ["a", "b", "new"], [1.0] * 3, stats, rng)
        firsts[indices[0]] += 1
    assert scores["a"] < scores["new"] < scores["b"]
    # Of the three pairs drawn, `a` wins two ({a, b}, {a, new}), `new` one ({b, new}).
    assert abs(firsts[0] / 3000 - 2 / 3) < 0.05
    assert abs(firsts[2] / 3000 - 1 / 3) < 0.05
    assert firsts[1] == 0


async def test_latency_with_nothing_measured_draws_evenly() -> None:
    stats = make_stats(ManualClock())
    rng = random.Random(13)
    firsts: Counter[int] = Counter()
    for _ in range(3000):
        indices, _ = await order("latency", ["a", "b", "c"], [1.0] * 3, stats, rng)
        firsts[indices[0]] += 1
    assert all(abs(firsts[i] / 3000 - 1 / 3) < 0.05 for i in range(3))
