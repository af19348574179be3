"""A caller's own limits, kept in the StateStore so that router replicas share them.

rpm and tpm are one rate window per client (`client:<name>:rate`), counted at admission and
corrected by the usage the call reported. Concurrent streams are slots of
`client:<name>:streams`, held for a stream's life and released on every path. `standing` reads
both for an operator (AdminService.ListClients) without counting anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from router_service.auth._callers import Caller
from router_service.errors import ClientRateLimitedError
from router_service.state import SlotRequest, StateStore

__all__ = ["CallerLimits", "LimitStanding", "RateTicket"]

# A refused stream slot frees when another stream ends; no window says when.
_STREAM_RETRY_AFTER_S = 1.0
# The rate window's own slot is released at once; its TTL is only a backstop.
_RATE_SLOT_TTL_S = 60.0


class RateTicket:
    """One admitted request's place in its caller's tpm window, to correct with real usage."""

    __slots__ = ("estimate", "resource", "window")

    def __init__(self, resource: str, window: int, estimate: int) -> None:
        self.resource = resource
        self.window = window
        self.estimate = estimate


@dataclass(frozen=True, slots=True)
class LimitStanding:
    """Where one client stands against its limits now, shared by the replicas on Redis; None
    where nothing is counted (no limit of that kind)."""

    requests: float | None  # the sliding minute rpm compares (counted with rpm or tpm)
    tokens: float | None  # the sliding minute tpm compares (counted with tpm)
    streams: int | None  # streams open now (counted with max_concurrent_streams)


class CallerLimits:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def count(self, caller: Caller, tokens: int) -> RateTicket | None:
        """Count one request of `tokens` estimated tokens, or raise ClientRateLimitedError."""
        if not caller.limited:
            return None
        resource = _rate(caller)
        grant = await self._store.acquire(
            SlotRequest(
                resource=resource,
                ttl_s=_RATE_SLOT_TTL_S,
                rpm=caller.rpm,
                tpm=caller.tpm,
                tokens=tokens if caller.tpm is not None else 0,
            )
        )
        if grant.lease_id is None:
            wait = grant.retry_after_s
            raise ClientRateLimitedError(
                f"Rate limit reached for client '{caller.name}' ({_limits(caller)}). "
                f"Try again in {math.ceil(wait)}s.",
                retry_after_s=wait,
            )
        await self._store.release(resource, grant.lease_id)
        return RateTicket(resource, grant.window, tokens) if caller.tpm is not None else None

    async def settle(self, ticket: RateTicket | None, used: int) -> None:
        """Replace the estimate by the tokens the call really used (when it said; 0: none, an
        answer from the response cache)."""
        if ticket is not None and used >= 0 and used != ticket.estimate:
            await self._store.add_tokens(ticket.resource, ticket.window, used - ticket.estimate)

    async def open_stream(self, caller: Caller, ttl_s: float) -> str | None:
        """Take a stream slot (None: the caller has no stream limit), or raise."""
        limit = caller.max_concurrent_streams
        if limit is None:
            return None
        grant = await self._store.acquire(
            SlotRequest(resource=_streams(caller), ttl_s=ttl_s, max_in_flight=limit)
        )
        if grant.lease_id is None:
            raise ClientRateLimitedError(
                f"Too many concurrent streams for client '{caller.name}' (limit {limit}).",
                retry_after_s=_STREAM_RETRY_AFTER_S,
            )
        return grant.lease_id

    async def close_stream(self, caller: Caller, lease_id: str | None) -> None:
        # Not shielded here: the interceptor runs a stream's end writes, this one included,
        # uncut (`router_service.cancellation`).
        if lease_id is not None:
            await self._store.release(_streams(caller), lease_id)

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
