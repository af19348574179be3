"""A caller's budgets: so many tokens, or so many USD, per UTC day or calendar month, shared by
replicas.

Platform teams give each app a budget of upstream usage; rpm and tpm smooth its traffic but
do not cap what it spends. What a client used in the current period is two fields of one
counter in the StateStore's buckets (`client:<name>:tokens:day` / `:month`, one bucket per
period, expiring when it ends): `tokens`, and `usd`, the cost of its calls at the configured
prices (the counter keeps its name from when it held tokens alone: a new name would start every
count anew at the upgrade). Replicas on Redis share them, and one write counts both. A call is
admitted while each of the period's counts is below its budget; its estimate (tokens as tpm's;
USD: those tokens, and the hosted tool calls it may make, at the dearest price among the
deployments its model may route to, `estimate_usd`) is counted at once and replaced by what it
reported (usage; RouteInfo.cost_usd), so a stream the caller leaves early still counts what it
was expected to cost.

A soft limit: calls admitted together may all pass a nearly spent budget (the overshoot is
bounded by what is in flight). Refused: `BudgetExhaustedError`, 429 `insufficient_quota`, with
RetryInfo / Retry-After until the period ends.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from router_service.auth._callers import Caller
from router_service.clock import Clock
from router_service.config import PriceConfig
from router_service.errors import BudgetExhaustedError
from router_service.state import StateStore

__all__ = ["BudgetReading", "BudgetStanding", "BudgetTicket", "Budgets", "estimate_usd"]

Unit = Literal["tokens", "usd"]
_TOKENS: Unit = "tokens"
_USD: Unit = "usd"
_DAY_S = 86_400.0
# Buckets outlive their period a little: a replica whose clock is behind still reads its own.
_SLACK_S = 60.0


@dataclass(frozen=True, slots=True)
class _Period:
    name: str
    bucket: Callable[[float], int]  # the period an instant falls in
    end: Callable[[int], float]  # when that period ends (Unix seconds)
    limit: Callable[[Caller], int | None]  # tokens
    usd: Callable[[Caller], float | None]
    words: str

    def budgeted(self, caller: Caller) -> bool:
        return self.limit(caller) is not None or self.usd(caller) is not None


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
        lambda caller: caller.usd_per_day,
        "per day; it renews at 00:00 UTC",
    ),
    _Period(
        "month",
        _month,
        _month_end,
        lambda caller: caller.tokens_per_month,
        lambda caller: caller.usd_per_month,
        "per month; it renews on the 1st, 00:00 UTC",
    ),
)


@dataclass(slots=True)
class BudgetTicket:
    """One admitted call's place in its caller's budgets: (counter, bucket, end) each, and the
    estimate (tokens, USD) counted there until the call reports what it used; `places`: where
    the store counted it, counter by counter (the shared store, or this replica's own state
    during an outage), so that what it used corrects the estimate there and nowhere else."""

    counters: list[tuple[str, int, float]]
    estimate: int
    estimate_usd: float = 0.0
    places: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    """Where one client stands in one of its budgets now (the metrics' and the admin's view)."""

    client: str
    period: str  # "day" or "month"
    unit: Unit  # tokens (whole numbers) or usd
    limit: float
    used: float
    resets_unix: float  # when the current period ends and its count starts from zero


@dataclass(frozen=True, slots=True)
class BudgetReading:
    """What the budgets of some callers need read: the bucket `names`, and the `standing` their
    buckets give, so that a reader can ask for them in one `read_buckets` with other names."""

    budgets: list[tuple[Caller, _Period]]
    now: float

    @property
    def names(self) -> list[str]:
        return [_counter(caller, period) for caller, period in self.budgets]

    def standing(self, found: list[dict[int, dict[str, float]]]) -> list[BudgetStanding]:
        """Each budget's standing, from the buckets `read_buckets(names)` found: the period's
        token budget, then its money budget, where configured."""
        out = []
        for (caller, period), buckets in zip(self.budgets, found, strict=True):
            bucket = period.bucket(self.now)
            counts, end = buckets.get(bucket, {}), period.end(bucket)
            if (limit := period.limit(caller)) is not None:
                used = int(counts.get(_TOKENS, 0.0))
                out.append(BudgetStanding(caller.name, period.name, _TOKENS, limit, used, end))
            if (usd := period.usd(caller)) is not None:
                spent = max(0.0, counts.get(_USD, 0.0))  # float sums may end a hair below 0
                out.append(BudgetStanding(caller.name, period.name, _USD, usd, spent, end))
        return out


def estimate_usd(
    prices: Sequence[PriceConfig],
    tokens: int,
    prompt: int | None,
    fees: Callable[[PriceConfig], float] | None = None,
) -> float:
    """What a call of `tokens` (`prompt` of them input; None: not known, each token at the
    dearer of the two) and the hosted tool calls it may make (`fees` at a price; None: none) may
    cost at the dearest of `prices`: the deployment that will answer is not known at admission
    (a fallback may reach any), and a soft cap should err on the side of the budget; the call's
    reported cost replaces it."""

    def cost(price: PriceConfig) -> float:
        if prompt is None:
            spent = max(price.cost_usd(tokens, 0), price.cost_usd(0, tokens))
        else:
            spent = price.cost_usd(prompt, max(0, tokens - prompt))
        return spent + (fees(price) if fees is not None else 0.0)

    return max((cost(price) for price in prices), default=0.0)


class Budgets:
    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def check(self, caller: Caller, estimate: int, usd: float = 0.0) -> BudgetTicket | None:
        """Raise BudgetExhaustedError when one of `caller`'s budgets is used up; else the
        ticket that counts `estimate` tokens and `usd` against them (`count`, once the call is
        admitted). None when the caller has no budget."""
        if not caller.budgeted:
            return None
        now = self._clock.now()
        periods = [p for p in _PERIODS if p.budgeted(caller)]
        names = [_counter(caller, p) for p in periods]
        found = await self._store.read_buckets(names)
        counters = []
        for period, name, buckets in zip(periods, names, found, strict=True):
            bucket, end = period.bucket(now), period.end(period.bucket(now))
            _refuse_when_spent(caller, period, buckets.get(bucket, {}), max(1.0, end - now))
            counters.append((name, bucket, end))
        return BudgetTicket(counters, estimate, usd)

    def reading(self, callers: list[Caller]) -> BudgetReading:
        """What reading the budgets of `callers` takes (their current periods, now)."""
        budgets = [
            (caller, period) for caller in callers for period in _PERIODS if period.budgeted(caller)
        ]
        return BudgetReading(budgets, self._clock.now())

    async def standing(self, callers: list[Caller]) -> list[BudgetStanding]:
        """Each budget of `callers` with what was used in its current period: one read."""
        reading = self.reading(callers)
        return reading.standing(await self._store.read_buckets(reading.names))

    async def count(self, ticket: BudgetTicket | None) -> None:
        """Count an admitted call's estimate."""
        if ticket is not None:
            await self._add(ticket, ticket.estimate, ticket.estimate_usd)

    async def settle(self, ticket: BudgetTicket | None, used: int, usd: float = 0.0) -> None:
        """Replace the estimate by the tokens and USD the call used (0: none, an answer from
        the response cache; calls that report nothing are not settled, their estimate stays).
        A call that outlived its period (a Realtime session begun before midnight) counts what
        it used past its estimate in the period it ends in: the ended one is no longer read."""
        if ticket is None or used < 0:
            return
        tokens, usd = used - ticket.estimate, usd - ticket.estimate_usd
        now = self._clock.now()
        if (tokens > 0 or usd > 0) and any(end <= now for _, _, end in ticket.counters):
            late, ticket = _split_ended(ticket, now)
            await self._add(late, max(0, tokens), max(0.0, usd))
        if ticket.counters:
            await self._add(ticket, tokens, usd)

    async def _add(self, ticket: BudgetTicket, tokens: int, usd: float) -> None:
        counts: dict[str, float] = {_TOKENS: float(tokens)} if tokens else {}
        if usd:  # a caller without money budgets, or with unpriced models: always 0
            counts[_USD] = usd
        if not counts:
            return
        now = self._clock.now()
        places = ticket.places or [""] * len(ticket.counters)  # not counted yet: anywhere
        ticket.places = [
            await self._store.add_to_bucket(
                name, bucket, counts, max(_SLACK_S, end - now + _SLACK_S), at=at
            )
            for (name, bucket, end), at in zip(ticket.counters, places, strict=True)
        ]


def _refuse_when_spent(
    caller: Caller, period: _Period, counts: dict[str, float], retry_after_s: float
) -> None:
    """BudgetExhaustedError when the period's tokens or USD reached their budget."""
    limit, used = period.limit(caller), counts.get(_TOKENS, 0.0)
    if limit is not None and used >= limit:
        raise BudgetExhaustedError(
            f"Client '{caller.name}' used its budget of {limit} tokens {period.words} "
            f"(used {int(used)}).",
            retry_after_s=retry_after_s,
        )
    usd, spent = period.usd(caller), counts.get(_USD, 0.0)
    if usd is not None and spent >= usd:
        raise BudgetExhaustedError(
            f"Client '{caller.name}' spent its budget of {usd:g} USD {period.words} "
            f"(spent {spent:.2f} USD).",
            retry_after_s=retry_after_s,
        )


def _split_ended(ticket: BudgetTicket, now: float) -> tuple[BudgetTicket, BudgetTicket]:
    """`ticket`'s counters whose period has ended, moved to the period of `now` (counted
    wherever counts go now), and the ticket of its others (where they were counted)."""
    late, rest = BudgetTicket([], 0), BudgetTicket([], ticket.estimate, ticket.estimate_usd)
    places = ticket.places or [""] * len(ticket.counters)
    for (name, bucket, end), at in zip(ticket.counters, places, strict=True):
        if end > now:
            rest.counters.append((name, bucket, end))
            rest.places.append(at)
            continue
        period = next(p for p in _PERIODS if name.endswith(":" + p.name))
        current = period.bucket(now)
        late.counters.append((name, current, period.end(current)))
    if not ticket.places:
        rest.places = []  # not counted yet: anywhere
    return late, rest


def _counter(caller: Caller, period: _Period) -> str:
    return f"client:{caller.name}:tokens:{period.name}"
