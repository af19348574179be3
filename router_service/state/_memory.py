"""StateStore for one process: dictionaries with expiry, swept as they are touched."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.state._base import (
    CLEARED_KEPT_S,
    RATE_WINDOW_S,
    AppendResult,
    DocumentPart,
    PutResult,
    RateCount,
    RateWindows,
    SlotGrant,
    SlotRequest,
    StateStore,
)
from router_service.state._counts import MemoryCounts
from router_service.state._documents import DEFAULT_DOCUMENT_BYTES, MemoryDocuments
from router_service.state._flights import FlightClaim, FlightWatch, Landing, MemoryFlights
from router_service.state._rates import rate_count, rate_window, sliding_count, sliding_wait
from router_service.state._values import MemoryValues

# Sweep expired entries once a map holds this many, so idle names cannot accumulate.
_SWEEP_AT = 4096


@dataclass(slots=True)
class _Rate:
    window: int
    requests: float = 0.0
    tokens: float = 0.0
    prev_requests: float = 0.0
    prev_tokens: float = 0.0

    def roll(self, window: int) -> None:
        if window == self.window:
            return
        adjacent = window == self.window + 1
        self.prev_requests = self.requests if adjacent else 0.0
        self.prev_tokens = self.tokens if adjacent else 0.0
        self.requests = self.tokens = 0.0
        self.window = window


class MemoryStateStore(MemoryCounts, MemoryValues, StateStore):
    completes_without_waiting = True  # no call here awaits anything

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, *, document_bytes: int = DEFAULT_DOCUMENT_BYTES
    ) -> None:
        self._clock = clock
        self.documents = MemoryDocuments(clock, document_bytes)
        self.flights = MemoryFlights(clock)
        self._counts = {}
        self.flight_board = self.flights.board  # the watches open (as RedisStateStore's)
        self._leases: dict[str, dict[str, float]] = {}
        self._rates: dict[str, _Rate] = {}
        self._deadlines: dict[str, float] = {}
        self._cleared: dict[str, float] = {}  # name -> when it was last cleared
        self._values: dict[str, tuple[str, float]] = {}
        self._groups: dict[str, dict[str, dict[str, float]]] = {}
        self._buckets: dict[str, dict[int, tuple[dict[str, float], float]]] = {}
        self._ids = itertools.count(1)

    async def acquire(self, request: SlotRequest) -> SlotGrant:
        now = self._clock.now()
        found = tuple(self._deadlines_now(request.unless)) if request.unless else ()
        if any(found):
            return SlotGrant(None, deadlines=found)
        resource = request.resource
        holders = self._leases.get(resource)
        if holders and request.max_in_flight is not None and len(holders) >= request.max_in_flight:
            self._expire(resource, holders, now)
            if len(self._leases.get(resource, ())) >= request.max_in_flight:
                return SlotGrant(None, deadlines=found)
        window = math.floor(now / RATE_WINDOW_S)
        windows = None
        if request.rpm is not None or request.tpm is not None:
            rate = self._rate_at(resource, now)
            window = rate.window
            wait = self._rate_check(request, rate, now, window)
            windows = RateWindows(
                now, window, rate.requests, rate.tokens, rate.prev_requests, rate.prev_tokens
            )
            if wait is not None:
                return SlotGrant(
                    None, retry_after_s=wait, window=window, deadlines=found, rate=windows
                )
        lease_id = str(next(self._ids))
        self._leases.setdefault(resource, {})[lease_id] = now + request.ttl_s
        return SlotGrant(lease_id, window=window, deadlines=found, rate=windows)

    def _rate_at(self, resource: str, now: float) -> _Rate:
        """The resource's rate windows, rolled to the minute a count at `now` goes in."""
        rate = self._rates.get(resource)
        window = rate_window(None if rate is None else rate.window, now)
        if rate is None:
            if len(self._rates) >= _SWEEP_AT:
                self._sweep_rates(window)
            rate = self._rates[resource] = _Rate(window)
        rate.roll(window)
        return rate

    def _rate_check(
        self, request: SlotRequest, rate: _Rate, now: float, window: int
    ) -> float | None:
        """Count the request in its window, or return how long until the window admits it."""
        requests = sliding_count(rate.prev_requests, rate.requests, now, window)
        tokens = sliding_count(rate.prev_tokens, rate.tokens, now, window)
        over_rpm = request.rpm is not None and requests + 1 > request.rpm
        # A request larger than the whole tpm budget is admitted into an empty window rather
        # than refused forever.
        over_tpm = request.tpm is not None and tokens > 0 and tokens + request.tokens > request.tpm
        if over_rpm or over_tpm:
            waits = [0.001]
            if over_rpm and request.rpm is not None:
                waits.append(
                    sliding_wait(rate.prev_requests, rate.requests, now, window, request.rpm, 1)
                )
            if over_tpm and request.tpm is not None:
                waits.append(
                    sliding_wait(
                        rate.prev_tokens, rate.tokens, now, window, request.tpm, request.tokens
                    )
                )
            return max(waits)
        rate.requests += 1
        rate.tokens += request.tokens
        return None

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        rate = self._rates.get(resource)
        behind = rate is None or rate.window < window  # the clock read only then
        if behind and window >= math.floor(self._clock.now() / RATE_WINDOW_S):
            rate = self._rate_at(resource, window * RATE_WINDOW_S)  # rolled to it
        if rate is None:
            return
        if rate.window == window:
            rate.tokens = max(0.0, rate.tokens + delta)
            rate.requests = max(0.0, rate.requests + requests)
        elif rate.window == window + 1:
            rate.prev_tokens = max(0.0, rate.prev_tokens + delta)
            rate.prev_requests = max(0.0, rate.prev_requests + requests)

    async def release(self, resource: str, lease_id: str) -> None:
        holders = self._leases.get(resource)
        if holders is not None:
            holders.pop(lease_id, None)
            if not holders:
                del self._leases[resource]

    def mirror_lease(self, resource: str, lease_id: str, expiry: float) -> None:
        """A lease a shared store granted, held here too (ResilientStateStore.acquire)."""
        self._leases.setdefault(resource, {})[lease_id] = expiry

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        holders = self._leases.get(resource)
        expiry = None if holders is None else holders.get(lease_id)
        now = self._clock.now()
        if holders is None or expiry is None or expiry <= now:
            return False
        holders[lease_id] = max(expiry, now + ttl_s)
        return True

    async def move_slots(self, source: str, target: str) -> None:
        holders = self._leases.pop(source, None)
        if holders:  # one process: every slot here is its own
            self._leases.setdefault(target, {}).update(holders)
        rate = self._rates.pop(source, None)
        if rate is not None:
            now = self._clock.now()
            rate.roll(rate_window(rate.window, now))
            into = self._rate_at(target, now)
            # Both in `now`'s minute or the next (begun by a clock ahead): the later one holds.
            into.roll(max(into.window, rate.window))
            rate.roll(into.window)
            into.requests += rate.requests
            into.tokens += rate.tokens
            into.prev_requests += rate.prev_requests
            into.prev_tokens += rate.prev_tokens

    async def rates(self, resources: Sequence[str]) -> list[RateCount]:
        now = self._clock.now()
        found = [self._rates.get(resource) for resource in resources]
        return [
            RateCount()
            if rate is None
            else rate_count(
                rate.window, (rate.requests, rate.tokens, rate.prev_requests, rate.prev_tokens), now
            )
            for rate in found
        ]

    async def held(self, resources: Sequence[str]) -> list[int]:
        now = self._clock.now()
        counts = []
        for resource in resources:
            holders = self._leases.get(resource)
            if holders:
                self._expire(resource, holders, now)
            counts.append(len(self._leases.get(resource, ())))
        return counts

    def _expire(self, resource: str, holders: dict[str, float], now: float) -> None:
        for lease_id in [lid for lid, expiry in holders.items() if expiry <= now]:
            del holders[lease_id]
        if not holders:
            self._leases.pop(resource, None)

    async def extend_deadline(
        self, name: str, until: float, *, decided_at: float | None = None
    ) -> float:
        current = self._deadlines.get(name, 0.0)
        if decided_at is not None and self._cleared_after(name, decided_at):
            return self._deadlines_now([name])[0]  # cleared since it was decided: not landed
        if until > current:
            self._deadlines[name] = until
            current = until
        if len(self._deadlines) >= _SWEEP_AT:
            self._sweep_deadlines()
        return current

    def _cleared_after(self, name: str, decided_at: float) -> bool:
        """Whether `name` was cleared after `decided_at`, that clear still remembered (for
        `CLEARED_KEPT_S` from its decision, as Redis keeps it: a sweep only frees the memory)."""
        cleared = self._cleared.get(name, -math.inf)
        return decided_at < cleared and self._clock.now() < cleared + CLEARED_KEPT_S

    def mirror_deadlines(self, names: Sequence[str], until: Sequence[float]) -> None:
        """Set each name's deadline to exactly `until` (0.0: none): a copy of what a shared
        store said, kept for when it is unreachable (ResilientStateStore). Synchronous: it runs
        on every shared read."""
        for name, end in zip(names, until, strict=True):
            if end:
                self._deadlines[name] = end
            else:
                self._deadlines.pop(name, None)
        if len(self._deadlines) >= _SWEEP_AT:
            self._sweep_deadlines()

    async def deadlines(self, names: Sequence[str]) -> list[float]:
        return self._deadlines_now(names)

    def _deadlines_now(self, names: Sequence[str]) -> list[float]:
        now = self._clock.now()
        out = []
        for name in names:
            until = self._deadlines.get(name, 0.0)
            if until and until <= now:
                del self._deadlines[name]
                until = 0.0
            out.append(until)
        return out

    async def clear_deadline(
        self,
        name: str,
        *,
        only: float | None = None,
        decided_at: float | None = None,
        remember: bool = True,
    ) -> None:
        if only is not None and self._deadlines.get(name, only) != only:
            return  # another deadline than the one meant: left, and no clear to remember
        self._deadlines.pop(name, None)
        if not remember:
            return
        at = self._clock.now() if decided_at is None else decided_at
        self._cleared[name] = max(at, self._cleared.get(name, at))
        if len(self._cleared) >= _SWEEP_AT:
            self._sweep_deadlines()

    def _sweep_deadlines(self) -> None:
        now = self._clock.now()
        for name in [n for n, until in self._deadlines.items() if until <= now]:
            del self._deadlines[name]
        for name in [n for n, at in self._cleared.items() if at + CLEARED_KEPT_S <= now]:
            del self._cleared[name]

    def _sweep_rates(self, window: int) -> None:
        for name in [n for n, r in self._rates.items() if r.window < window - 1]:
            del self._rates[name]

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        now = self._clock.now()
        members = self._live_members(group, now)
        if member not in members and limit is not None and len(members) >= limit:
            return None
        token = str(next(self._ids))
        self._groups.setdefault(group, {}).setdefault(member, {})[token] = now + ttl_s
        return token

    def mirror_mark(self, group: str, member: str, token: str, expiry: float) -> None:
        """A mark a shared store let in, held here too (ResilientStateStore.enter)."""
        self._groups.setdefault(group, {}).setdefault(member, {})[token] = expiry

    async def leave(self, group: str, member: str, token: str) -> None:
        members = self._groups.get(group)
        if members is None or member not in members:
            return
        members[member].pop(token, None)
        if not members[member]:
            del members[member]
        if not members:
            del self._groups[group]

    async def members(self, group: str) -> dict[str, int]:
        return {m: len(t) for m, t in self._live_members(group, self._clock.now()).items()}

    def tokens(self, group: str) -> list[tuple[str, str]]:
        """(member, token) of each live mark in `group` (a reload moves them: SessionState)."""
        members = self._live_members(group, self._clock.now())
        return [(member, token) for member, tokens in members.items() for token in tokens]

    def _live_members(self, group: str, now: float) -> dict[str, dict[str, float]]:
        members = self._groups.get(group, {})
        for member in list(members):
            tokens = members[member]
            for token in [t for t, exp in tokens.items() if exp <= now]:
                del tokens[token]
            if not tokens:
                del members[member]
        if not members:
            self._groups.pop(group, None)
        return members

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        now = self._clock.now()
        buckets = self._buckets.setdefault(name, {})
        fields, _ = buckets.get(bucket, ({}, 0.0))
        for field, value in counts.items():
            fields[field] = fields.get(field, 0.0) + value
        buckets[bucket] = (fields, now + ttl_s)
        for old in [b for b, (_, exp) in buckets.items() if exp <= now]:
            del buckets[old]
        return "memory"

    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        now = self._clock.now()
        return [
            {b: dict(f) for b, (f, exp) in self._buckets.get(name, {}).items() if exp > now}
            for name in names
        ]

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        return self.documents.put(name, data, ttl_s, only_new=only_new)

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        return self.documents.append(name, data, max_bytes)

    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        return self.documents.replace(name, data, ttl_s, size, head)

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        return self.documents.get(names)

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        return self.documents.read(name, start, max_bytes)

    async def delete_document(self, name: str) -> bool:
        return self.documents.delete(name)

    def watch_flight(self, name: str) -> AbstractContextManager[FlightWatch]:
        return self.flights.board.watch(name)

    async def claim_flight(self, name: str, ttl_s: float) -> FlightClaim:
        return self.flights.claim(name, ttl_s)

    async def land_flight(self, name: str, token: str, landing: Landing) -> None:
        self.flights.land(name, token, landing)

    async def renew_flight(self, name: str, token: str, ttl_s: float) -> bool:
        return self.flights.renew(name, token, ttl_s)

    async def flight_left(self, name: str, token: str) -> float:
        return self.flights.left(name, token)

    async def aclose(self) -> None:
        return None

    def sizes(self) -> tuple[int, int, int]:
        """(resources with leases, rate windows, deadlines): tests prove nothing accumulates."""
        return len(self._leases), len(self._rates), len(self._deadlines)
