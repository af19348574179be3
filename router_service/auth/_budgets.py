"""A caller's token budgets: so many tokens per UTC day or calendar month, shared by replicas.

Platform teams give each app a budget of upstream usage; rpm and tpm smooth its traffic but
do not cap what it spends. The tokens a client used in the current period are a counter in the
StateStore's buckets (`client:<name>:tokens:day` / `:month`, one bucket per period, expiring
when it ends), so replicas on Redis share them. A call is admitted while the period's count is
below the budget; its estimate (as tpm's) is counted at once and replaced by the usage it
reported, so a stream the caller leaves early still counts what it was expected to cost.

A soft limit: calls admitted together may all pass a nearly spent budget (the overshoot is
bounded by what is in flight). Refused: `BudgetExhaustedError`, 429 `insufficient_quota`, with
RetryInfo / Retry-After until the period ends.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from router_service.auth._callers import Caller
from router_service.clock import Clock
from router_service.errors import BudgetExhaustedError
from router_service.state import StateStore

__all__ = ["BudgetReading", "BudgetStanding", "BudgetTicket", "TokenBudgets"]

_FIELD = "tokens"
_DAY_S = 86_400.0
# Buckets outlive their period a little: a replica whose clock is behind still reads its own.
_SLACK_S = 60.0


@dataclass(frozen=True, slots=True)
class _Period:
    name: str
    bucket: Callable[[float], int]  # the period an instant falls in
    end: Callable[[int], float]  # when that period ends (Unix seconds)
    limit: Callable[[Caller], int | None]
    words: str


def _month(now: float) -> int:
    day = dt.datetime.fromtimestamp(now, dt.UTC)
    return day.year * 12 + day.month - 1


def _month_end(bucket: int) -> float:
    year, month = divmod(bucket + 1, 12)
    return dt.datetime(year, month + 1, 1, tzinfo=dt.UTC).timestamp()


_PERIODS = (
    _Period(
        "day",
        lambda now: math.floor(now / _DAY_S),
        lambda bucket: (bucket + 1) * _DAY_S,
        lambda caller: caller.tokens_per_day,
        "per day; it renews at 00:00 UTC",
    ),
    _Period(
        "month",
        _month,
        _month_end,
        lambda caller: caller.tokens_per_month,
        "per month; it renews on the 1st, 00:00 UTC",
    ),
)


@dataclass(slots=True)
class BudgetTicket:
    """One admitted call's place in its caller's budgets: (counter, bucket, end) each, and the
    estimate counted there until the call reports its usage."""

    counters: list[tuple[str, int, float]]
    estimate: int


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    """Where one client stands in one of its budgets now (the metrics' and the admin's view)."""

    client: str
    period: str  # "day" or "month"
    limit: int
    used: int
    resets_unix: float  # when the current period ends and its count starts from zero


@dataclass(frozen=True, slots=True)
class BudgetReading:
    """What the budgets of some callers need read: the bucket `names`, and the `standing` their
    buckets give, so that a reader can ask for them in one `read_buckets` with other names."""

    budgets: list[tuple[Caller, _Period, int]]
    now: float

    @property
    def names(self) -> list[str]:
        return [_counter(caller, period) for caller, period, _ in self.budgets]

    def standing(self, found: list[dict[int, dict[str, float]]]) -> list[BudgetStanding]:
        """Each budget's standing, from the buckets `read_buckets(names)` found."""
        out = []
        for (caller, period, limit), buckets in zip(self.budgets, found, strict=True):
            bucket = period.bucket(self.now)
            used = int(buckets.get(bucket, {}).get(_FIELD, 0.0))
            out.append(BudgetStanding(caller.name, period.name, limit, used, period.end(bucket)))
        return out


class TokenBudgets:
    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def check(self, caller: Caller, estimate: int) -> BudgetTicket | None:
        """Raise BudgetExhaustedError when one of `caller`'s budgets is used up; else the
        ticket that counts `estimate` against them (`count`, once the call is admitted). None
        when the caller has no budget."""
        if not caller.budgeted:
            return None
        now = self._clock.now()
        periods = [(p, limit) for p in _PERIODS if (limit := p.limit(caller)) is not None]
        names = [_counter(caller, p) for p, _ in periods]
        found = await self._store.read_buckets(names)
        counters = []
        for (period, limit), name, buckets in zip(periods, names, found, strict=True):
            bucket, end = period.bucket(now), period.end(period.bucket(now))
            used = buckets.get(bucket, {}).get(_FIELD, 0.0)
            if used >= limit:
                raise BudgetExhaustedError(
                    f"Client '{caller.name}' used its budget of {limit} tokens {period.words} "
                    f"(used {int(used)}).",
                    retry_after_s=max(1.0, end - now),
                )
            counters.append((name, bucket, end))
        return BudgetTicket(counters, estimate)

    def reading(self, callers: list[Caller]) -> BudgetReading:
        """What reading the budgets of `callers` takes (their current periods, now)."""
        budgets = [
            (caller, period, limit)
            for caller in callers
            for period in _PERIODS
            if (limit := period.limit(caller)) is not None
        ]
        return BudgetReading(budgets, self._clock.now())

    async def standing(self, callers: list[Caller]) -> list[BudgetStanding]:
        """Each budget of `callers` with the tokens used in its current period: one read."""
        reading = self.reading(callers)
        return reading.standing(await self._store.read_buckets(reading.names))

    async def count(self, ticket: BudgetTicket | None) -> None:
        """Count an admitted call's estimate."""
        if ticket is not None:
            await self._add(ticket, ticket.estimate)

    async def settle(self, ticket: BudgetTicket | None, used: int) -> None:
        """Replace the estimate by the tokens the call used (0: none, an answer from the
        response cache; calls that report nothing are not settled, their estimate stays)."""
        if ticket is None or used < 0 or used == ticket.estimate:
            return
        await self._add(ticket, used - ticket.estimate)

    async def _add(self, ticket: BudgetTicket, tokens: int) -> None:
        if tokens == 0:
            return
        now = self._clock.now()
        for name, bucket, end in ticket.counters:
            ttl_s = max(_SLACK_S, end - now + _SLACK_S)
            await self._store.add_to_bucket(name, bucket, {_FIELD: float(tokens)}, ttl_s)


def _counter(caller: Caller, period: _Period) -> str:
    return f"client:{caller.name}:tokens:{period.name}"
