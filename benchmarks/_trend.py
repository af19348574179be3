"""Whether a figure sampled over a soak run stays flat: the least-squares slope of its second
half (the first half is warm-up: pools, caches, TTL-bounded maps filling) and the rise that
slope makes over that half, against a tolerance. Pure functions (`benchmarks/tests`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]  # (seconds since the run began, value)


@dataclass(frozen=True, slots=True)
class Tolerance:
    """The rise over the second half that still counts as flat: `absolute` (in the figure's
    unit) or `relative` (a share of its median there), whichever is larger."""

    absolute: float
    relative: float = 0.0

    def allowed(self, median: float) -> float:
        return max(self.absolute, self.relative * abs(median))


@dataclass(frozen=True, slots=True)
class Trend:
    start: float  # the first sample of the whole run
    end: float  # the last one
    slope_per_min: float  # over the second half
    rise: float  # slope x the second half's duration
    allowed: float
    points: int  # samples in the second half

    @property
    def flat(self) -> bool | None:
        """True: no growth beyond the tolerance; False: growth; None: too few samples. A fall
        is flat: memory handed back is no leak."""
        if self.points < 3:
            return None
        return self.rise <= self.allowed


def slope(points: Sequence[Point]) -> float:
    """Least-squares slope (value per second); 0 for fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def second_half(points: Sequence[Point]) -> list[Point]:
    """The samples from the middle of the run (by time) to its end."""
    if not points:
        return []
    middle = (points[0][0] + points[-1][0]) / 2
    return [p for p in points if p[0] >= middle]


def trend(points: Sequence[Point], tolerance: Tolerance) -> Trend:
    """The figure's start and end, and its slope and rise over the second half."""
    if not points:
        return Trend(0.0, 0.0, 0.0, 0.0, tolerance.absolute, 0)
    half = second_half(points)
    per_s = slope(half)
    duration = half[-1][0] - half[0][0] if half else 0.0
    allowed = tolerance.allowed(median([v for _, v in half]))
    return Trend(points[0][1], points[-1][1], per_s * 60, per_s * duration, allowed, len(half))
