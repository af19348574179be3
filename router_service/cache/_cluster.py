"""Cluster flights (`cache.coalesce: cluster`): identical misses on different replicas make one
upstream call.

The second layer, under each replica's own flights (`_flights.py`): only a replica's first miss
of a name (its local leader) comes here; the misses that follow it on that replica wait for it
as before and never touch the store. Here it claims the name's flight in the state store (one
round trip: `StateStore.claim_flight`, a lease bounded by the call's deadline and
`cache.flight_ttl_s`):

- claimed: it leads. It asks upstream and keeps the answer as always; once the answer is
  written (after the caller has it, as a key's release) the flight lands KEPT, or EMPTY when
  nothing was kept: the call failed, its caller left, the answer was too large or over quota.
- held by another replica's leader: it waits for the landing (a notice from the store: Redis
  pub/sub, no polling), at most what that lease has left, then reads the kept answer (a HIT).
  A landing with nothing, a lease that ran out (its replica died) or a store that stopped
  hearing (a lost subscriber): it asks upstream itself, leading the next flight if nobody took
  it meanwhile, and never waits twice (a failing upstream must not line the callers up).

A waiting caller that leaves (cancelled) stops its own wait only: its watch closes, the leader
and the other followers go on. One whose own deadline passes first (on the router's clock)
stops there (DeadlineExceededError), as a follower of its own replica's flight and a stream
reading another replica's do: it does not wait out what a lease left by a replica that died
has left (up to `flight_ttl_s`) past it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import Clock
from router_service.engine import Afterwork
from router_service.errors import DeadlineExceededError
from router_service.state import Landing, StateStore
from router_service.telemetry import current

__all__ = ["Boarding", "ClusterFlights"]

# The shortest lease: a call already past its deadline still leads for a moment, not for 0 s.
_MIN_TTL_S = 0.001


@dataclass(frozen=True, slots=True)
class Boarding:
    """What a local leader found in the store."""

    lease: str = ""  # this replica leads the flight: land it (`ClusterFlights.land`)
    answer: pb.CachedAnswer | None = None  # another replica's leader kept this answer


class ClusterFlights:
    def __init__(self, store: StateStore, afterwork: Afterwork, ttl_s: float, clock: Clock) -> None:
        self._store = store
        self._clock = clock  # a waiting caller's deadline is timed on the router's clock
        self._afterwork = afterwork
        self._ttl_s = ttl_s
        # How followers' waits ended, by landing (tests; a metric's source).
        self.heard: Counter[Landing] = Counter()

    def ttl(self, remaining_s: float | None) -> float:
        """A lease's TTL: `flight_ttl_s`, or what the call's deadline leaves when less."""
        if remaining_s is None:
            return self._ttl_s
        return max(_MIN_TTL_S, min(self._ttl_s, remaining_s))

    async def board(
        self,
        name: str,
        remaining_s: float | None,
        read: Callable[[], Awaitable[pb.CachedAnswer | None]],
    ) -> Boarding:
        """Lead the flight of `name`, or wait for the one under way and `read` its answer;
        DeadlineExceededError when `remaining_s` (what the caller's deadline leaves; None: none)
        passed first."""
        store, ttl_s = self._store, self.ttl(remaining_s)
        until = None if remaining_s is None else self._clock.monotonic() + remaining_s
        with store.watch_flight(name) as watch:  # before the claim: no landing is missed
            claim = await store.claim_flight(name, ttl_s)
            if claim.token is not None:
                return Boarding(claim.token)
            if claim.left_s <= 0:  # the store cannot tell us when it lands: go alone
                return Boarding()
            wait_s = claim.left_s
            if until is not None:  # its own deadline first, when nearer
                wait_s = min(wait_s, until - self._clock.monotonic())
            landing = await watch.landing(claim.holder, wait_s)
        if landing is Landing.LAPSED and until is not None and self._clock.monotonic() >= until:
            raise DeadlineExceededError(
                "The request's deadline passed while an identical request's answer, which it "
                "waits for (on another replica), was on its way."
            )
        self.count(landing)
        if landing is Landing.KEPT:
            answer = await read()
            if answer is not None:
                return Boarding(answer=answer)
        # Nothing to read: ask upstream, leading the next flight if it is free (no second wait).
        return Boarding((await store.claim_flight(name, ttl_s)).token or "")

    def count(self, landing: Landing) -> None:
        """How a wait for another replica's flight ended (a unary answer's, a stream's)."""
        self.heard[landing] += 1
        current().metrics.cluster_waits.add(1, {"landing": landing.value})

    async def land(self, name: str, lease: str, landing: Landing) -> None:
        """Land the flight `lease` leads, after the answer (Afterwork: a task on Redis, so a
        caller that left is not held by it, nor can its cancellation cut it short)."""
        stack = AsyncExitStack()
        stack.push_async_callback(self._store.land_flight, name, lease, landing)
        await self._afterwork.close(stack)
