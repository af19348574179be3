"""The decision API: PickRoute hands a caller a deployment and a leased key, chosen exactly as for
a proxied call; ReportOutcome returns the lease with the result, which feeds the same Outcome
table, session rules and statistics. A lease never reported expires and counts as unknown — not
as a success — and its key slot is given back."""

from __future__ import annotations

import asyncio
import logging
import secrets
from contextlib import AsyncExitStack

from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.engine._afterwork import close_failed
from router_service.engine._attempts import AttemptRunner
from router_service.engine._met import none_leased
from router_service.engine._model import Deployment, RequestContext
from router_service.engine._planner import Planner, nothing_planned
from router_service.engine._route_records import (
    TAKEN,
    TAKEN_HERE,
    RouteLease,
    RouteRecord,
    record_name,
    record_ttl,
    record_ttl_past,
    route_taken_over,
)
from router_service.errors import NoCapacityError, StoreUnavailableError, UpstreamFailure
from router_service.keys import KeyLease, Refusal, Unavailable
from router_service.outcomes import Outcome, Scope, read_nothing
from router_service.sessions import ActiveMark
from router_service.state import MemoryStateStore
from router_service.telemetry import record_decision

log = logging.getLogger("switchboard.router")

# Outstanding leases one process holds at most: a caller that never reports cannot grow this.
MAX_OUTSTANDING = 10_000
# Records of outstanding routes read in one store call when looking for those reported on
# another replica (a bounded MGET); a pick that finds the table full reads the oldest so many.
_READ_AT_ONCE = 500


class RouteLeases:
    def __init__(self, planner: Planner, runner: AttemptRunner, clock: Clock, ttl_s: float) -> None:
        self._planner = planner
        self._runner = runner
        self._clock = clock
        self._ttl_s = ttl_s
        self._outstanding: dict[str, RouteLease] = {}
        # Out of the table, not yet counted: expired (being given back), a report that did not
        # end, or one whose store could not tell whether another replica took (and counted)
        # it first; the store asked again at each sweep (`_sweep_expired`).
        self._unsure: dict[str, RouteLease] = {}
        self._task: asyncio.Task[None] | None = None
        self.sweep_every_s = min(5.0, ttl_s / 4)  # the background sweep's period (`start`)
        self._handed_over = False  # another RouteLeases owns `_outstanding` (adopt)
        # One process's store: no other replica can take a report, so no route keeps a record.
        self._records = not isinstance(runner.store, MemoryStateStore)

    def __len__(self) -> int:
        return len(self._outstanding)

    async def pick(
        self, ctx: RequestContext, *, tokens: int, exclude: frozenset[str]
    ) -> RouteLease:
        await self._sweep_expired()
        if len(self._outstanding) >= MAX_OUTSTANDING:
            await self._forget_reported(most=_READ_AT_ONCE)  # room taken by reported ones
        if len(self._outstanding) >= MAX_OUTSTANDING:
            raise NoCapacityError("Too many unreported PickRoute leases.", retry_after_s=1.0)
        plan = await self._planner.plan(ctx)
        if not plan.candidates:
            raise nothing_planned(ctx, plan)
        refusals: list[Unavailable] = []
        for deployment in plan.candidates:
            if deployment.name in exclude:
                continue
            lease = await deployment.pool.lease(deployment.upstream_model, tokens=tokens)
            if not isinstance(lease, KeyLease):
                refusals.append(lease)
                continue
            route = await self._open(ctx, deployment, lease)
            if route is None:  # the provider serves its `max_sessions` conversations
                refusals.append(Unavailable(Refusal.BUSY))
                continue
            self._outstanding[route.lease_id] = route
            return route
        if refusals:  # as a proxied call's: why (every key disabled: a 503), when to come back
            raise await none_leased(ctx, plan, refusals, exclude)
        raise NoCapacityError("No deployment of that model can be leased now.")

    async def _open(
        self, ctx: RequestContext, deployment: Deployment, lease: KeyLease
    ) -> RouteLease | None:
        """`lease`'s route, outstanding; None when the provider serves its `max_sessions`
        conversations. Given back on every way out before it is (the mark refused, the caller
        gone during a round trip, its record not kept): the key's slot (else held to its TTL),
        and the call never made under it out of the key's rate windows (`not_sent`), a
        failure of either logged, never told in place of the refusal or the caller's error."""
        taking, route = AsyncExitStack(), None
        taking.push_async_callback(lease.release)
        try:
            mark = await self._runner.sessions.enter(
                ctx.session_id, deployment.provider, deployment.session_limit
            )
            if mark is not None:
                taking.push_async_callback(self._runner.sessions.leave, mark)
                lease_id = "rl_" + secrets.token_urlsafe(18)
                expires_at = self._clock.now() + self._ttl_s
                record = await self._keep(lease_id, deployment, lease, ctx, mark, expires_at)
                stack, group = taking.pop_all(), ctx.requested_model
                route = RouteLease(
                    lease_id, deployment, lease, ctx, stack, expires_at, record, group
                )
        finally:
            if route is None:
                taking.push_async_callback(lease.not_sent)
                await close_failed(taking)
        return route

    async def _keep(
        self,
        lease_id: str,
        deployment: Deployment,
        lease: KeyLease,
        ctx: RequestContext,
        mark: ActiveMark,
        expires_at: float,
    ) -> bytes:
        """The route's record in the store, for a report that reaches another replica."""
        if not self._records:
            return b""
        shared = None if self._runner.sessions.leaves_locally(mark) else mark
        record = RouteRecord(
            deployment.name,
            lease.key.fingerprint,
            lease.model,
            lease.slot_id,
            lease.window,
            lease.tokens,
            ctx.session_id,
            ctx.client,
            expires_at,
            shared,
            ctx.requested_model,
        )
        data = record.encode()
        await self._runner.store.put_document(record_name(lease_id), data, record_ttl(self._ttl_s))
        return data

    async def report(
        self,
        lease_id: str,
        outcome: Outcome,
        *,
        upstream_status: int = 0,
        latency_s: float | None = None,
        retry_after_s: float | None = None,
        total_tokens: int | None = None,
        too_large_for_tpm: bool = False,
    ) -> bool:
        """`too_large_for_tpm`: a RATE_LIMITED of no key's (`Scope.NONE`, as for the router's
        own calls): it, like a context or size refusal, read nothing (the estimate goes back)."""
        route = await self._take(lease_id)
        if route is None:
            return False
        deployment, lease, ctx = route.deployment, route.lease, route.ctx
        try:
            if outcome is Outcome.OK:
                if total_tokens is not None:
                    await lease.settle_tokens(total_tokens)
                await lease.report(Outcome.OK)
                await self._runner.sessions.stick(
                    ctx.session_id, ctx.requested_model, deployment.name
                )
                await self._runner.stats.record(deployment.health_name, True, latency_s)
            elif outcome is not Outcome.CANCELLED:
                failure = UpstreamFailure(
                    outcome,
                    "reported by caller",
                    upstream_status=upstream_status,
                    retry_after_s=None if too_large_for_tpm else retry_after_s,
                    scope=Scope.NONE if too_large_for_tpm else None,
                )
                if read_nothing(outcome, failure.scope):
                    await lease.settle_tokens(0)
                await self._runner.react(ctx, deployment, lease, failure, started=False)
                stats = self._runner.stats
                await stats.record_failure(deployment.health_name, outcome, failure.scope)
        except BaseException:
            self._unfinished(route)
            await close_failed(route.stack)  # the report's own error wins
            raise
        route.counted = (outcome.name, total_tokens if outcome is Outcome.OK else None)
        try:  # applied: accepted, the release logged; counted also if its caller leaves meanwhile
            await close_failed(route.stack, finished=True)
        finally:
            if route.unsure:  # counted by the sweep that finds it was not another's to count
                self._unsure[lease_id] = route
            else:
                self._count(route)
        return True

    async def _take(self, lease_id: str) -> RouteLease | None:
        """The route `lease_id` names, for its one report: this replica's own unless another
        replica took its report already, else one another replica picked (its record)."""
        route = self._outstanding.pop(lease_id, None)
        if route is None:
            return await self._taken_over(lease_id)
        try:
            elsewhere = await self._reported_elsewhere(route)
        except BaseException:
            self._unfinished(route)
            await close_failed(route.stack)
            raise
        if not elsewhere:
            route.unsure = elsewhere is None
            return route
        await close_failed(route.stack)  # its slot and mark were given back there
        return None

    def _unfinished(self, route: RouteLease) -> None:
        """`route`, whose report did not end (its caller left, an error), counted UNKNOWN by
        the next sweep: taken from the table, it is no longer reported there nor expires."""
        self._unsure[route.lease_id] = route

    async def _reported_elsewhere(self, route: RouteLease) -> bool | None:
        """Whether another replica took the report of this replica's `route`: its record is
        the mark that taking leaves (else this call takes it). A record gone (expired, dropped
        for room) is no sign of another's report: the route is this one's. None: the store is
        out of reach (the report is taken here, counted once the sweep can ask)."""
        try:
            return await self._taken_elsewhere(route)
        except StoreUnavailableError:
            return None

    async def _taken_elsewhere(self, route: RouteLease) -> bool:
        """As `_reported_elsewhere`; StoreUnavailableError when the store cannot tell."""
        store, name = self._runner.store, record_name(route.lease_id)
        record, ttl_s = route.record, record_ttl(self._ttl_s)
        if not record:  # none kept: nobody else could take it
            return False
        if await store.replace_document(name, TAKEN_HERE, ttl_s, size=len(record), head=record):
            return False
        return (await store.get_documents([name]))[0] == TAKEN

    async def _taken_over(self, lease_id: str) -> RouteLease | None:
        """A route another replica picked, from its record, once this report took it (the
        record replaced by TAKEN while still the record: of two reports, one). What it holds
        in the store (the key's slot, the session's shared mark) is given back from here; the
        picking replica forgets it at its next sweep."""
        if not self._records:
            return None
        store, name = self._runner.store, record_name(lease_id)
        data = (await store.get_documents([name]))[0] or b""
        record = RouteRecord.decode(data) if data else None  # TAKEN: none
        if record is None:
            return None
        deployment = self._planner.deployments.get(record.deployment)
        key = deployment.pool.find(record.key) if deployment is not None else None
        if deployment is None or key is None:
            return None  # not in this config (a rollout): left to the replica that picked it
        taking = asyncio.ensure_future(
            store.replace_document(name, TAKEN, record_ttl(self._ttl_s), size=len(data), head=data)
        )
        route = route_taken_over(lease_id, record, deployment, key, self._runner, self._clock)
        try:  # its reply waited for: the record taken while this report's caller left is
            if not await uncut(taking):  # counted here, as a report that did not end (the
                return None  # picking replica, finding it taken, counts nothing)
        except asyncio.CancelledError:
            if not taking.cancelled() and taking.exception() is None and taking.result():
                self._unfinished(route)
            raise
        if record.expires_at <= self._clock.now():  # expired: not reported; its expiry is
            record_decision(record.group, record.client, "UNKNOWN", deployment)  # counted here
            await close_failed(route.stack)  # (the picking replica then finds it taken)
            return None
        return route

    async def sweep(self) -> int:
        """Give back every expired lease, which counts as an unknown outcome (no statistic),
        and forget those another replica took the report of. How many expired unreported."""
        swept = await self._sweep_expired()
        await self._forget_reported()
        return swept

    async def _forget_reported(self, most: int | None = None) -> None:
        """Forget this replica's routes whose report another replica took (which gave back
        what they held in the store): not at their TTL, meanwhile counted among this one's
        MAX_OUTSTANDING and its key's calls here. `most`: the oldest so many only."""
        routes = [r for r in self._outstanding.values() if r.record][:most]
        for start in range(0, len(routes), _READ_AT_ONCE):
            batch = routes[start : start + _READ_AT_ONCE]
            names = [record_name(r.lease_id) for r in batch]
            try:
                found = await self._runner.store.get_documents(names)
            except StoreUnavailableError:
                return
            for route, data in zip(batch, found, strict=True):
                # Its own report or sweep may have taken it meanwhile (they pop it first).
                if data == TAKEN and self._outstanding.pop(route.lease_id, None) is route:
                    await close_failed(route.stack)

    async def _sweep_expired(self) -> int:
        """Give back every expired lease (a pick's sweep: the store is asked of those only).
        An expired lease moves from the table to `_unsure` at once and leaves it only as it is
        counted (or found taken elsewhere): a sweep cut short (a pick whose caller left while
        it asked the store, a stop) leaves the rest to the next, and of two sweeps at once
        (a pick's, the background one) one counts each."""
        now = self._clock.now()
        for route in [r for r in self._outstanding.values() if r.expires_at <= now]:
            del self._outstanding[route.lease_id]
            self._unsure[route.lease_id] = route
        swept = 0
        for route in list(self._unsure.values()):
            await close_failed(route.stack)  # once: a closed stack gives back nothing again
            try:
                if await self._taken_elsewhere(route):
                    self._unsure.pop(route.lease_id, None)
                    continue  # which gave back what it held, and counted it
            except StoreUnavailableError:  # asked again while its record may be in the store
                if now < route.expires_at + record_ttl_past(self._ttl_s):
                    continue
            if self._unsure.pop(route.lease_id, None) is route:  # not another sweep's meanwhile
                swept += self._count(route)
        return swept

    def _count(self, route: RouteLease, how: str = "expired unreported") -> bool:
        """`route` in the metrics: UNKNOWN, as it ended unreported (logged), or as its report
        (`counted`). Whether it was unreported."""
        outcome, tokens = route.counted
        record_decision(route.group, route.ctx.client, outcome, route.deployment, tokens=tokens)
        if outcome != "UNKNOWN":
            return False
        log.warning(
            "PickRoute lease for %s (key %s) %s",
            route.deployment.name,
            route.lease.key.fingerprint,
            how,
        )
        return True

    def start(self) -> None:
        """Sweep in the background (expired leases are also swept on every pick)."""
        if self._task is None:
            self._task = asyncio.create_task(self._sweep_forever(), name="switchboard-leases")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every_s)
            try:
                await self.sweep()
            except Exception:  # a bug, an error no store translated: the next sweep goes on
                # Stopped, the sweeper would leave expired leases holding their keys until a
                # pick came (and another replica's reports in this one's table).
                log.exception("sweeping PickRoute leases failed")

    def adopt(self, other: RouteLeases) -> None:
        """Take over `other`'s outstanding leases (a reloaded config's runtime): a caller who
        picked a route before the reload reports its outcome here. Each keeps the deployment
        and key it was picked with. Both share one table from now on, so a pick that `other`
        was still making lands here too; `other.aclose` then gives nothing back."""
        other._outstanding.update(self._outstanding)
        self._outstanding = other._outstanding  # one table however many reloads share it
        other._unsure.update(self._unsure)
        self._unsure = other._unsure  # expired, not yet counted: counted by either's sweep
        other._handed_over = True

    async def aclose(self) -> None:
        """Stop sweeping and give back everything still outstanding, each counted UNKNOWN once
        (`_stopped`). Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))
        if self._handed_over:
            return
        routes = [*self._outstanding.values(), *self._unsure.values()]
        self._outstanding, self._unsure = {}, {}
        for route in routes:
            await close_failed(route.stack)
            await self._stopped(route)

    async def _stopped(self, route: RouteLease) -> None:
        """`route` not yet counted at this replica's stop, counted now (unreported: UNKNOWN),
        as no report can reach it here any more: its record taken first, so that a report
        reaching another replica later is refused (not counted again), unless one there took
        it already (counted there). A store that cannot tell: counted here (a stop cannot ask
        again)."""
        try:
            if await self._taken_elsewhere(route):
                return
        except StoreUnavailableError:
            pass
        self._count(route, "unreported at the router's stop")
