"""A caller's own limits, kept in the StateStore so that router replicas share them.

rpm and tpm are one rate window per client (`client:<name>:rate`), counted at admission and
corrected by the usage the call reported. The admission's grant carries the windows as it left
them, so where the client stands after the call (`RateStatus`: RouteInfo.rate_limit, the edge's
`x-ratelimit-*` headers) costs no second read. Concurrent streams are slots of
`client:<name>:streams`, held for a stream's life and released on every path. `standing` reads
both for an operator (AdminService.ListClients) without counting anything.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from contextvars import ContextVar
from dataclasses import dataclass

from router_service.auth._callers import Caller
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.errors import ClientRateLimitedError
from router_service.state import (
    RateWindows,
    SlotRequest,
    StateStore,
    correction_window,
    sliding_count,
    sliding_wait,
)

__all__ = [
    "CallerLimits",
    "LimitStanding",
    "RateStatus",
    "RateTicket",
    "current_standing",
    "rate_status",
    "set_current_standing",
]

# A refused stream slot frees when another stream ends; no window says when.
_STREAM_RETRY_AFTER_S = 1.0
# A stream its caller cancelled frees its slot once the router sees the cancel, which lands
# asynchronously: a stream of the same caller refused meanwhile waits this long for a stream of
# its caller to end in this process, and is served then (its caller cancelled and re-opened);
# it asks once more as the wait ends (the cancel on another replica, unheard of here).
_REOPEN_WAIT_S = 0.5
# Per store, a stream slot's resource -> set when one of its streams ends here (`_after_an_end`):
# shared by every gate on the store, a reload's too (streams begun before it end through the
# old one's).
_ENDS: weakref.WeakKeyDictionary[StateStore, dict[str, asyncio.Event]] = weakref.WeakKeyDictionary()
# The rate window's own slot is released at once; its TTL is only a backstop.
_RATE_SLOT_TTL_S = 60.0
# What `count` answers for a caller without rpm or tpm: nothing counted, nothing to tell.
_UNCOUNTED: tuple[None, None] = (None, None)


class RateTicket:
    """One admitted request's place in its caller's rate window: its tokens to correct with real
    usage (`tpm`: counted against a tpm limit), and the request itself to give back when the
    call is refused as invalid (it reached no upstream); both where it was counted (its grant's
    `lease_id`: the shared store, or this replica's own state during an outage)."""

    __slots__ = ("estimate", "lease_id", "resource", "tpm", "window")

    def __init__(
        self, resource: str, window: int, estimate: int, *, lease_id: str, tpm: bool = True
    ) -> None:
        self.resource = resource
        self.window = window
        self.estimate = estimate
        self.lease_id = lease_id
        self.tpm = tpm  # False: rpm only (its tokens are not counted, nor settled)


@dataclass(frozen=True, slots=True)
class LimitStanding:
    """Where one client stands against its limits now, shared by the replicas on Redis; None
    where nothing is counted (no limit of that kind)."""

    requests: float | None  # the sliding minute rpm compares (counted with rpm or tpm)
    tokens: float | None  # the sliding minute tpm compares (counted with tpm)
    streams: int | None  # streams open now (counted with max_concurrent_streams)


@dataclass(frozen=True, slots=True)
class RateStatus:
    """Where a client stands against its rpm and tpm right after a call was counted (as found,
    when refused): limit, what is left (never negative) and the seconds until the sliding
    estimate next frees room. None where that limit is not configured."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


def rate_status(caller: Caller, windows: RateWindows, tokens: int, *, refused: bool) -> RateStatus:
    """The caller's standing from the windows its admission returned; `tokens`: the call's
    estimate (what a refusal for tpm waits to fit)."""
    requests: tuple[int | None, int | None, float | None] = (None, None, None)
    counted: tuple[int | None, int | None, float | None] = (None, None, None)
    if caller.rpm is not None:
        requests = _standing(
            windows.prev_requests, windows.requests, windows, caller.rpm, 1, refused
        )
    if caller.tpm is not None:
        counted = _standing(
            windows.prev_tokens, windows.tokens, windows, caller.tpm, tokens, refused
        )
    return RateStatus(*requests, *counted)


def _standing(
    prev: float, cur: float, windows: RateWindows, limit: int, need: int, refused: bool
) -> tuple[int, int, float]:
    """(limit, remaining, reset) of one limit. The reset is when the estimate leaves room for
    one more than remains now; for the limit that refused a call, when it leaves room for that
    call (its Retry-After: the same arithmetic as the store's)."""
    at, window = windows.at, windows.window
    estimate = sliding_count(prev, cur, at, window)
    if estimate <= 0:
        return limit, limit, 0.0  # nothing counted: nothing to free
    remaining = max(0, math.floor(limit - estimate))
    wait_for = need if refused and estimate + need > limit else remaining + 1
    return limit, remaining, sliding_wait(prev, cur, at, window, limit, wait_for)


class CallerLimits:
    def __init__(self, store: StateStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._clock = clock  # what a refused stream's wait for a slot is timed on
        self._ended = _ENDS.setdefault(store, {})

    async def count(
        self, caller: Caller, tokens: int
    ) -> tuple[RateTicket | None, RateStatus | None]:
        """Count one request of `tokens` estimated tokens: its ticket (to settle, with a tpm)
        and where the caller stands now; or raise ClientRateLimitedError (with the standing)."""
        if not caller.limited:
            return _UNCOUNTED
        resource = _rate(caller)
        tokens = tokens if caller.tpm is not None else 0
        grant = await self._store.acquire(
            SlotRequest(
                resource=resource,
                ttl_s=_RATE_SLOT_TTL_S,
                rpm=caller.rpm,
                tpm=caller.tpm,
                tokens=tokens,
            )
        )
        lease_id, windows = grant.lease_id, grant.rate  # the same decision's: no second read
        refused = lease_id is None
        status = None if windows is None else rate_status(caller, windows, tokens, refused=refused)
        if lease_id is None:
            wait = grant.retry_after_s
            raise ClientRateLimitedError(
                f"Rate limit reached for client '{caller.name}' ({_limits(caller)}). "
                f"Try again in {math.ceil(wait)}s.",
                retry_after_s=wait,
                rate_limit=status,
            )
        await self._store.release(resource, lease_id)
        ticket = RateTicket(
            resource, grant.window, tokens, lease_id=lease_id, tpm=caller.tpm is not None
        )
        return ticket, status

    async def settle(self, ticket: RateTicket | None, used: int) -> None:
        """Replace the estimate by the tokens the call really used (when it said; 0: none, an
        answer from the response cache). A call that outlived the sliding minute it was counted
        in (a Realtime session, a WebRTC call, a long stream) counts what it used past its
        estimate in the minute it ends in: its own minute no longer counts, and those tokens,
        put there, were counted nowhere (a session's start estimates none)."""
        if ticket is None or not ticket.tpm or used < 0 or used == ticket.estimate:
            return
        delta, now = used - ticket.estimate, self._clock.now()
        placed = correction_window(ticket.window, delta, 0, now, ticket.lease_id)
        if placed is not None:
            window, delta, _, lease_id = placed
            await self._store.add_tokens(ticket.resource, window, delta, lease_id=lease_id)

    async def give_back(self, ticket: RateTicket | None, *, rpm: bool = True) -> None:
        """Un-count a request refused as invalid: its place in rpm (unless not `rpm`: an
        upstream refused it, a call was made) and its estimate in tpm (the store's negative
        correction, in the window it was counted in; none once it has passed out of the
        sliding minute)."""
        if ticket is not None and (rpm or ticket.estimate):
            await self._store.add_tokens(
                ticket.resource,
                ticket.window,
                -ticket.estimate,
                requests=-1 if rpm else 0,
                lease_id=ticket.lease_id,
            )

    async def open_stream(self, caller: Caller, ttl_s: float) -> str | None:
        """Take a stream slot (None: the caller has no stream limit), or raise."""
        limit = caller.max_concurrent_streams
        if limit is None:
            return None
        request = SlotRequest(resource=_streams(caller), ttl_s=ttl_s, max_in_flight=limit)
        lease_id = (await self._store.acquire(request)).lease_id
        if lease_id is None:
            lease_id = await self._after_an_end(request)
        if lease_id is None:
            raise ClientRateLimitedError(
                f"Too many concurrent streams for client '{caller.name}' (limit {limit}).",
                retry_after_s=_STREAM_RETRY_AFTER_S,
            )
        return lease_id

    async def _after_an_end(self, request: SlotRequest) -> str | None:
        """The slot `request` asks for, taken after a stream of its caller ended in this
        process within `_REOPEN_WAIT_S` (None: none ended, or another took its slot first).
        Each ask is made listening for an end already (one while a shared store's refusal was
        on its way is not missed), and outside the wait's timing: a grant on its way as the
        wait ends is taken, not cut (its slot held until its TTL, by no stream). Asked once
        more as the wait ends: a stream ended on another replica (a cancel there, the re-open
        here) is heard of by no one here."""
        until = self._clock.monotonic() + _REOPEN_WAIT_S
        waiting = True
        while waiting:
            ended = self._ended.get(request.resource)
            if ended is None:
                ended = self._ended[request.resource] = asyncio.Event()
            lease_id = (await self._store.acquire(request)).lease_id
            if lease_id is not None:
                return lease_id
            try:
                async with self._clock.timeout(until - self._clock.monotonic()):
                    await ended.wait()
            except TimeoutError:
                waiting = False
        return (await self._store.acquire(request)).lease_id

    async def renew_stream(self, caller: Caller, lease_id: str, ttl_s: float) -> bool:
        """Keep a stream slot past its TTL; False when it is no longer held."""
        return await self._store.renew(_streams(caller), lease_id, ttl_s)

    async def close_stream(self, caller: Caller, lease_id: str | None) -> None:
        # Not shielded here: the interceptor runs a stream's end writes, this one included,
        # uncut (`router_service.cancellation`).
        if lease_id is not None:
            await self._store.release(_streams(caller), lease_id)
            ended = self._ended.pop(_streams(caller), None)
            if ended is not None:  # streams of the caller wait for a slot (`_after_an_end`)
                ended.set()

    async def standing(self, callers: list[Caller]) -> list[LimitStanding]:
        """Each caller's minute and open streams, in one read of the store."""
        limited = [caller for caller in callers if caller.limited]
        streamed = [c for c in callers if c.max_concurrent_streams is not None]
        reading = await self._store.read(
            rates=[_rate(c) for c in limited], held=[_streams(c) for c in streamed]
        )
        rates = dict(zip([c.name for c in limited], reading.rates, strict=True))
        held = dict(zip([c.name for c in streamed], reading.held, strict=True))
        out = []
        for caller in callers:
            rate = rates.get(caller.name)
            out.append(
                LimitStanding(
                    requests=None if rate is None else rate.requests,
                    tokens=None if rate is None or caller.tpm is None else rate.tokens,
                    streams=held.get(caller.name),
                )
            )
        return out


def _rate(caller: Caller) -> str:
    return f"client:{caller.name}:rate"


def _streams(caller: Caller) -> str:
    return f"client:{caller.name}:streams"


def _limits(caller: Caller) -> str:
    parts = []
    if caller.rpm is not None:
        parts.append(f"{caller.rpm} requests per minute")
    if caller.tpm is not None:
        parts.append(f"{caller.tpm} tokens per minute")
    return ", ".join(parts)


# The admitted call's standing, for the error boundary: a call that fails after it was counted
# (every upstream refused, a deadline) tells its caller where it stands as an answer does.
_STANDING: ContextVar[RateStatus | None] = ContextVar("switchboard_standing", default=None)


def current_standing() -> RateStatus | None:
    """The rate standing of the call this context serves; None before admission, or for a
    caller without rpm or tpm."""
    return _STANDING.get()


def set_current_standing(status: RateStatus) -> None:
    _STANDING.set(status)
