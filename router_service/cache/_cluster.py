"""Cluster flights (`cache.coalesce: cluster`): identical misses on different replicas make one
upstream call.

The second layer, under each replica's own flights (`_flights.py`): only a replica's first miss
of a name (its local leader) comes here; the misses that follow it on that replica wait for it
as before and never touch the store. Here it claims the name's flight in the state store (one
round trip: `StateStore.claim_flight`, a short lease, `cache.flight_lease_s`, or what the
call's deadline leaves when less):

- claimed: it leads. It asks upstream and keeps the answer as always; while its call runs it
  renews the lease every third of `flight_lease_s` (`leading`: a `FlightHold` the runtime's one
  renewer of open calls' holds renews, engine/_stream_holds.py, not a task of the call's own;
  stopped with it however it ends; the last renewal reaches no further than its deadline), so
  a call slower than any lease still holds the others to its one upstream call. A renewal
  not made (the store unreachable, the lease lapsed and taken) is logged once and tried again.
  Once the answer is written (after the caller has it, as a key's release) the flight lands
  KEPT, or EMPTY when nothing was kept: the call failed, its caller left, the answer was too
  large or over quota.
- held by another replica's leader: it waits for the landing (a notice from the store: Redis
  pub/sub, no polling), at most what that lease has left; then, when nothing was heard, it
  reads the lease again: renewed (its leader lives), it waits on. Landed KEPT: it reads the
  kept answer (a HIT). A landing with nothing, a lease that ran out unrenewed (its replica
  died: within `flight_lease_s`) or a store that stopped hearing (a lost subscriber): it asks
  upstream itself, leading the next flight if nobody took it meanwhile, and never waits twice
  (a failing upstream must not line the callers up).

A waiting caller that leaves (cancelled) stops its own wait only: its watch closes, the leader
and the other followers go on. One whose own deadline passes first (on the router's clock)
stops there (DeadlineExceededError), as a follower of its own replica's flight and a stream
reading another replica's do: it does not wait out what a lease left by a replica that died
has left past it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import Clock
from router_service.engine import Afterwork, Held, HoldRenewer
from router_service.errors import DeadlineExceededError
from router_service.state import Landing, StateStore, StoreUnavailableError
from router_service.telemetry import current

__all__ = ["Boarding", "ClusterFlights", "FlightHold"]

log = logging.getLogger("switchboard.cache")

# The shortest lease: a call already past its deadline still leads for a moment, not for 0 s.
_MIN_TTL_S = 0.001
# A leader renews its lease this many times per lease: a renewal late by a round trip, or by a
# busy event loop, still comes well before the lease would lapse.
_RENEWALS_PER_LEASE = 3


class FlightHold(Held):
    """A leader's lease of a cluster flight, renewed by the runtime's one renewer of open
    calls' holds (engine/_stream_holds.py: no task per call) while its call runs."""

    __slots__ = ("flights", "lease", "name", "until", "warned")

    def __init__(
        self,
        renewer: HoldRenewer,
        flights: ClusterFlights,
        name: str,
        lease: str,
        until: float | None,
        every_s: float,
        due: float,
    ) -> None:
        super().__init__(renewer, every_s, due)
        self.flights = flights
        self.name = name
        self.lease = lease
        self.until = until  # the call's deadline (monotonic; None: none)
        self.warned = False  # a failed renewal is logged once a call, not every period

    async def renew(self) -> None:
        try:
            held = await self.flights.renew(self.name, self.lease, self.until)
        except Exception:  # a bug: the others, and the next period, go on
            log.exception("renewing a cluster flight's lease failed")
            return
        if held is None:
            self.end()  # its deadline passed: nothing more to hold
        elif not held and not self.warned:
            self.warned = True  # (the name is a digest of its request: not logged either)
            log.warning(
                "a cluster flight's lease was not renewed (the state store unreachable, or "
                "the lease lapsed and taken): tried again every %.1fs",
                self.every_s,
            )


@dataclass(frozen=True, slots=True)
class Boarding:
    """What a local leader found in the store."""

    lease: str = ""  # this replica leads the flight: land it (`ClusterFlights.land`)
    answer: pb.CachedAnswer | None = None  # another replica's leader kept this answer


class ClusterFlights:
    def __init__(
        self,
        store: StateStore,
        afterwork: Afterwork,
        lease_s: float,
        clock: Clock,
        renewer: HoldRenewer,
    ) -> None:
        self._store = store
        self._clock = clock  # deadlines and renewals are timed on the router's clock
        self._afterwork = afterwork
        self._lease_s = lease_s
        # How followers' waits ended, by landing (tests; a metric's source).
        self.heard: Counter[Landing] = Counter()
        self._renewer = renewer  # the runtime's one renewer of what open calls hold
        self.renewed = 0  # leases renewed since start (tests see a leader renew)
        # Renewals not made (the store unreachable, or the lease lapsed and taken): each is
        # tried again at the next period, as a stream's holds are.
        self.unrenewed = 0

    @property
    def lease_s(self) -> float:
        """`flight_lease_s`: a live leader renews its lease within it."""
        return self._lease_s

    def ttl(self, remaining_s: float | None) -> float:
        """A lease's TTL: `flight_lease_s`, or what the call's deadline leaves when less."""
        if remaining_s is None:
            return self._lease_s
        return max(_MIN_TTL_S, min(self._lease_s, remaining_s))

    @asynccontextmanager
    async def leading(
        self, name: str, lease: str, remaining_s: float | None
    ) -> AsyncIterator[None]:
        """Renew the lease `lease` of `name` while the block runs (the leader's call), up to
        the call's deadline (`remaining_s` from now; None: none). Nothing without a lease."""
        if not lease:
            yield
            return
        every_s = self._lease_s / _RENEWALS_PER_LEASE
        now = self._clock.monotonic()
        until = None if remaining_s is None else now + remaining_s
        hold = FlightHold(self._renewer, self, name, lease, until, every_s, now + every_s)
        self._renewer.add(hold)
        try:
            yield
        finally:  # kept, failed, its caller left, its stream cut: the renewals end with it
            await hold.stop()  # one under way ends first: the landing must not precede it

    async def renew(self, name: str, lease: str, until: float | None) -> bool | None:
        """One renewal of a leader's lease, up to its call's deadline (`until`; None: none):
        True renewed, False not (logged by its hold), None nothing more to renew (past it)."""
        left_s = None if until is None else until - self._clock.monotonic()
        if left_s is not None and left_s <= 0:
            return None  # its deadline passed: the lease ends with the call's time
        try:
            held = await self._store.renew_flight(name, lease, self.ttl(left_s))
        except StoreUnavailableError:  # a store without a local fallback: as one with it
            held = False
        if held:
            self.renewed += 1
        else:  # unreachable, or not its lease (lapsed and taken: never renewed back)
            self.unrenewed += 1
        return held

    async def board(
        self,
        name: str,
        remaining_s: float | None,
        read: Callable[[], Awaitable[pb.CachedAnswer | None]],
    ) -> Boarding:
        """Lead the flight of `name`, or wait for the one under way and `read` its answer;
        DeadlineExceededError when `remaining_s` (what the caller's deadline leaves; None: none)
        passed first."""
        store = self._store
        until = None if remaining_s is None else self._clock.monotonic() + remaining_s
        with store.watch_flight(name) as watch:  # before the claim: no landing is missed
            claim = await store.claim_flight(name, self.ttl(remaining_s))
            # Another replica leads, and the store tells us how it lands (else: go alone).
            while claim.token is None and claim.left_s > 0:
                holder = claim.holder
                landing = await watch.landing(holder, self._wait_s(claim.left_s, until))
                if landing is not Landing.LAPSED or watch.deaf:
                    break
                # Nothing heard while its lease lasted, as last read: renewed since (its leader
                # lives: wait on), or not (its replica died: lead the next flight, or go alone).
                claim = await store.claim_flight(name, self.ttl(self._left_s(until)))
                if claim.token is not None or claim.holder != holder:
                    self.count(Landing.LAPSED)
                    return Boarding(claim.token or "")
            else:
                return Boarding(claim.token or "")
        left_s = self._left_s(until) if landing is Landing.LAPSED else None  # hearing stopped
        self.count(landing)
        if landing is Landing.KEPT:
            answer = await read()
            if answer is not None:
                return Boarding(answer=answer)
        # Nothing to read: ask upstream, leading the next flight if it is free (no second wait).
        if landing is not Landing.LAPSED:
            left_s = self._left_s(until)
        claim = await store.claim_flight(name, self.ttl(left_s))
        return Boarding(claim.token or "")

    def _wait_s(self, left_s: float, until: float | None) -> float:
        """How long to wait for a landing: what the lease has left, or the caller's own
        deadline when nearer."""
        return left_s if until is None else min(left_s, until - self._clock.monotonic())

    def _left_s(self, until: float | None) -> float | None:
        """What the caller's deadline leaves now (None: none); DeadlineExceededError when it
        passed while it waited for another replica's flight."""
        if until is None:
            return None
        left_s = until - self._clock.monotonic()
        if left_s <= 0:
            raise DeadlineExceededError(
                "The request's deadline passed while an identical request's answer, which it "
                "waits for (on another replica), was on its way."
            )
        return left_s

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
