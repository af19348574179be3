"""Strategies: how a model group orders its deployments for one request. Each returns the order
and the scores it drew (for traces and admin output)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

from router_service.routing._stats import RoutingStats

T = TypeVar("T")


async def order(
    strategy: str,
    names: Sequence[str],
    weights: Sequence[float],
    stats: RoutingStats,
    rng: random.Random,
) -> tuple[list[int], dict[str, float]]:
    """Indices of `names` in the order to try them, and the score each was given."""
    n = len(names)
    if n <= 1 or strategy == "ordered":
        return list(range(n)), {}
    if strategy == "weighted":
        return _weighted(weights, rng), {}
    if strategy == "thompson":
        params = await stats.read(names)
        scores = [rng.betavariate(p.alpha, p.beta) for p in params]
        ranked = sorted(range(n), key=lambda i: -scores[i])
        return ranked, {names[i]: scores[i] for i in range(n)}
    if strategy == "latency":
        return _latency(names, stats, rng)
    raise ValueError(f"unknown strategy {strategy!r}")


def _weighted(weights: Sequence[float], rng: random.Random) -> list[int]:
    """Weighted random order without replacement (Efraimidis–Spirakis keys u ** (1 / w),
    compared as their logarithms: a small weight's power underflowed to 0.0, a tie that the
    first listed won)."""
    keys = [math.log(u) / w if (u := rng.random()) > 0 else -math.inf for w in weights]
    return sorted(range(len(weights)), key=lambda i: -keys[i])


def _latency(
    names: Sequence[str], stats: RoutingStats, rng: random.Random
) -> tuple[list[int], dict[str, float]]:
    """Power of two choices: of two deployments drawn at random, the faster goes first, so one
    fast deployment is not stampeded by everyone; the rest follow fastest first. A deployment
    with no measurement yet (no successful call) counts as the average of the measured ones:
    drawn, and so measured, but not preferred to a faster one (as fastest, one that never
    succeeds would go first in every draw it is in, for good)."""
    ewma = {name: stats.latency(name) for name in names}
    measured = [value for value in ewma.values() if value is not None]
    unknown = sum(measured) / len(measured) if measured else 0.0
    score = {name: (value if value is not None else unknown) for name, value in ewma.items()}
    a, b = rng.sample(range(len(names)), 2)
    first = a if score[names[a]] <= score[names[b]] else b
    rest = sorted((i for i in range(len(names)) if i != first), key=lambda i: score[names[i]])
    return [first, *rest], score
