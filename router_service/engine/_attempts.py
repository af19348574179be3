"""The attempt loop: for each candidate, lease a key, call, classify, let the Outcome table react.

Two budgets, never confused: the key walk tries each key of a deployment's provider at most once
(so a request never fails while a healthy key sits unused), and the candidate walk moves through
the plan. Everything a successful attempt holds (its lease, its session mark, an open upstream
stream) lives in an AsyncExitStack that the caller takes over; a failed attempt's stack is closed
at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TypeVar

from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.config import CooldownsConfig
from router_service.engine._afterwork import close_failed
from router_service.engine._attempt_end import AttemptEnd
from router_service.engine._cooldown_log import CooldownLog
from router_service.engine._held_back import excluded_now
from router_service.engine._met import Inexpressible, Met
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._planner import nothing_planned
from router_service.engine._stream_holds import HoldRenewer
from router_service.engine._truncation import Shortening, shortened
from router_service.errors import AllCandidatesFailedError, DeadlineExceededError, UpstreamFailure
from router_service.keys import KeyLease, Refusal, Unavailable
from router_service.outcomes import NextStep, Outcome, cools_deployment, reaction_for, read_nothing
from router_service.routing import RoutingStats
from router_service.sessions import SessionState, thread_actions
from router_service.state import StateStore
from router_service.telemetry import (
    AttemptHandle,
    attempt_span,
    key_wait,
    record_reaction,
    record_unsupported,
)

T = TypeVar("T")
Attempt = Callable[[Deployment, KeyLease, AsyncExitStack], Awaitable[T]]
Walked = tuple[T, Deployment, AsyncExitStack]
_BUSY = Unavailable(Refusal.BUSY)  # the provider already serves its limit of sessions


class AttemptRunner:
    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        cooldowns: CooldownsConfig,
        sessions: SessionState,
        stats: RoutingStats,
        renewer: HoldRenewer | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._cooldowns = cooldowns
        self.sessions = sessions
        self.stats = stats
        # A runtime's is its lineage's (`Runtime.renewer`): streams of a replaced config too.
        together = store.batches_concurrent_calls
        self.renewer = renewer or HoldRenewer(clock, together=together)
        self._cooldown_log = CooldownLog()  # a cooldown logged once when it begins

    @property
    def store(self) -> StateStore:
        return self._store

    async def run(
        self,
        ctx: RequestContext,
        plan: Plan,
        attempt: Attempt[T],
        *,
        tokens: int = 0,
        record_success: bool = True,
        cannot: Inexpressible | None = None,
    ) -> Walked[T]:
        """Run `attempt` until one succeeds; return its result, deployment and open stack.

        Deployments whose keys are all at their limits are skipped at first; if nothing else
        answered, the request then queues (in arrival order) for the first of them.
        `record_success=False` is for a stream, which stays open after its attempt: the caller
        records its result when it ends. Either way the session sticks to the deployment
        before the caller hears anything (its next call, on any replica, reads the choice);
        the lease release and the rest wait for the stack's close. `cannot` says
        which deployments cannot express the request at all (UNSUPPORTED_INPUT): they are
        passed over, and the caller gets their 400 only when no other could serve."""
        if not plan.candidates:
            raise nothing_planned(ctx, plan)
        met = Met(cannot)
        for index, deployment in enumerate(plan.candidates):
            if met.passes_over(ctx, deployment):
                continue
            # A deployment that cannot express the request (audio for Claude) is passed over
            # before any key is leased: nothing is sent, no key, limit or statistic pays.
            unsupported = cannot(deployment) if cannot is not None else None
            if unsupported is not None:
                self._unsupported(ctx, deployment, unsupported)
                met.failed(unsupported, deployment)
                continue
            # Another request's failure may have cooled it or excluded it for the session
            # since we planned; the first candidate was checked by the plan a moment ago (one
            # store round trip saved).
            checked = index and not plan.forced
            if checked and (now := await excluded_now(self._store, self.sessions, ctx, deployment)):
                now.hold_back(plan, deployment)  # named, for the retry hint, as the plan's
                (met.last_resort if now.last_resort else met.withheld).append(deployment)
                continue
            # A shortened retry held back by its key's limits waits for it only where no other
            # deployment is left to answer first, nor queued for below (the last candidate, no
            # other blocked: else the request would wait twice), or in the queue.
            last = index == len(plan.candidates) - 1 and not met.blocked
            walked = await self._walk(ctx, deployment, attempt, tokens, 0.0, record_success, last)
            if isinstance(walked, tuple):
                return walked
            # A shortened retry that found the key at its limit waited for it already (on the
            # last), or is queued for as held (`ctx.truncation`: its shorter input).
            held = ctx.truncation
            met.met(walked, deployment, waited=last and held is not None, held=held)
        return await self._at_last(ctx, plan, met, attempt, tokens, record_success)

    async def _at_last(
        self,
        ctx: RequestContext,
        plan: Plan,
        met: Met,
        attempt: Attempt[T],
        tokens: int,
        record_success: bool,
    ) -> Walked[T]:
        """Nothing on the walk answered: the one whose keys were all at their limits (waited
        for), then those the session came to skip (`last_resort`); else why none did."""
        queued = met.queued_for(ctx)
        if queued is not None:
            wait_s, held = _queue_wait(ctx, queued), met.held_retries.get(queued.name)
            walked = await self._walk(
                ctx, queued, attempt, tokens, wait_s, record_success, True, held
            )
            if isinstance(walked, tuple):
                return walked
            met.met(walked, queued, queued=True)
        for deployment in met.last_resort:
            if met.passes_over(ctx, deployment):
                continue
            # Read again: it may have come to cool, or its provider to be banned, meanwhile.
            now = await excluded_now(self._store, self.sessions, ctx, deployment)
            if now is not None and not now.last_resort:
                now.hold_back(plan, deployment)  # not asked at all: named as the walk names it
                met.withheld.append(deployment)
                continue
            del plan.excluded[deployment.name], plan.usable_at[deployment.name]  # asked after all
            last = deployment is met.last_resort[-1] and not met.blocked
            walked = await self._walk(ctx, deployment, attempt, tokens, 0.0, record_success, last)
            if isinstance(walked, tuple):
                return walked
            met.met(walked, deployment)
        raise await met.error(ctx, plan)

    def _unsupported(
        self, ctx: RequestContext, deployment: Deployment, failure: UpstreamFailure
    ) -> None:
        """The route names the deployment passed over and why (no key: none was leased)."""
        ctx.record(
            deployment, "", failure.outcome, self._clock.monotonic(), detail=failure.message[:200]
        )
        record_unsupported(deployment)

    async def _walk(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        attempt: Attempt[T],
        tokens: int,
        wait_s: float,
        record_success: bool,
        retry_waits: bool,
        held: Shortening | None = None,
    ) -> Walked[T] | UpstreamFailure | Unavailable:
        """Walk one deployment's keys, each at most once, while the Outcome table says to; one
        result for the deployment in its statistics (a success's latency its own attempt's, as
        a stream's: not the keys that failed before it, nor the wait for a key). `retry_waits`:
        a shortened retry its key's limits hold back waits for the key; `held`: one queued for."""
        tried: set[str] = set()
        failure: UpstreamFailure | None = None
        ctx.truncation, tokens = held, tokens if held is None else held.tokens
        while True:
            wait = 0.0 if tried else wait_s
            leasing = deployment.pool.lease_or_wait(
                deployment.upstream_model, tried, tokens=tokens, wait_s=wait
            )
            # The common case, no queue: no time in it to measure, nor a frame to measure it.
            lease = await (leasing if wait <= 0 else _measured(deployment, wait, leasing))
            if isinstance(lease, Unavailable):
                # A shortened retry (none `tried` since) left keyless: its refusal, not too long.
                if failure is None or not tried:
                    return lease
                break
            tried.add(lease.key.fingerprint)
            started = self._clock.monotonic()
            with attempt_span(ctx, deployment, lease) as span:
                result = await self._one(ctx, deployment, lease, attempt, record_success, span)
            if isinstance(result, Unavailable):
                return result
            if not isinstance(result, UpstreamFailure):
                if record_success:
                    await self._succeeded(deployment, result[1], started)
                return result[0], deployment, result[1]
            failure = result
            if shortened(ctx, failure) and ctx.truncation is not None:
                # `truncation: auto`: the same deployment, shorter, the key's tpm counting what
                # it sends; a key at its limit waited for as by a queued request (`retry_waits`).
                tried.clear()
                tokens = ctx.truncation.tokens
                wait_s = _queue_wait(ctx, deployment) if retry_waits else 0.0
                continue
            step = reaction_for(result.outcome).next_step
            if step is NextStep.RETURN_ERROR:
                raise AllCandidatesFailedError(result, deployment.provider)
            if step is not NextStep.OTHER_KEY:
                break
        await self.stats.record_failure(deployment.health_name, failure.outcome, failure.scope)
        return failure

    async def _succeeded(
        self, deployment: Deployment, stack: AsyncExitStack, started: float
    ) -> None:
        """A unary success in the deployment's statistics, timed from its attempt's `started`."""
        elapsed = self._clock.monotonic() - started
        try:
            await self.stats.record(deployment.health_name, True, elapsed)
        except BaseException:  # the caller left during its write (or it failed):
            await close_failed(stack)  # nobody else would (the lease held)
            raise

    async def _one(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        attempt: Attempt[T],
        unary: bool,
        span: AttemptHandle,
    ) -> tuple[T, AsyncExitStack] | UpstreamFailure | Unavailable:
        """One attempt; on success what it holds, `span` included, ends with the stack."""
        started, fp = self._clock.monotonic(), lease.key.fingerprint
        stack = AsyncExitStack()
        end = AttemptEnd(lease, self.sessions, together=self._store.batches_concurrent_calls)
        stack.push_async_exit(end)
        try:
            end.mark = await self.sessions.enter(
                ctx.session_id, deployment.provider, deployment.session_limit
            )
        except BaseException:  # the caller left during the mark's round trip: the lease goes
            stack.push_async_callback(lease.not_sent)  # and what its grant counted
            await close_failed(stack)
            raise
        if end.mark is None:  # no call: the key's rate windows do not count one
            stack.push_async_callback(lease.not_sent)
            await close_failed(stack)
            return _BUSY
        # A stream may outlast its lease's and mark's TTLs; so may a call whose total_s nears them.
        ttl_s = min(deployment.pool.lease_ttl_s, self.sessions.mark_ttl_s)
        if not unary or ctx.attempt_timeout(deployment.timeouts.total_s) > ttl_s * 2 / 3:
            end.hold = self.renewer.keep(lease, end, self.sessions, ttl_s, ctx.stream_slot)
        try:
            value = await _in_time(ctx, attempt, deployment, lease, stack)
        except UpstreamFailure as failure:
            return await self._failed(ctx, deployment, lease, stack, failure, started)
        except (asyncio.CancelledError, DeadlineExceededError):
            # The caller left or its deadline passed: released, recorded, nobody penalised.
            await close_failed(stack)
            ctx.record(deployment, fp, Outcome.CANCELLED, started)
            raise
        except BaseException:
            await close_failed(stack)
            raise
        ctx.record(deployment, fp, Outcome.OK, started, upstream_status=200)
        try:
            await lease.report(Outcome.OK)
            # Before the answer (a stream's: before its first chunk): the caller's next call,
            # on any replica, reads it. Nothing is sent when the plan read this very choice
            # and this replica wrote it lately (`SessionState.stuck`): the common case.
            current = ctx.plan.sticky if ctx.plan is not None else None
            stick = (ctx.session_id, ctx.requested_model, deployment.name, current)
            if not self.sessions.stuck(*stick):  # no coroutine either, then
                await self.sessions.stick(*stick[:3], current=current)
        except BaseException:  # the caller left during the stick's round trip, or it failed
            await close_failed(stack)  # nobody else would: the lease held, a stream's renewed
            raise
        end.span_end = span.end_later()
        return value, stack

    async def _failed(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        stack: AsyncExitStack,
        failure: UpstreamFailure,
        started: float,
    ) -> UpstreamFailure:
        """An attempt the upstream failed: closed, recorded, reacted to. A refusal that read
        nothing (`read_nothing`: past the context window, larger than the key's whole tpm
        budget, a body over the upstream's size limit) has its estimate taken out of the key's
        tpm again (a `truncation` retry, shorter, is not held back by it, nor are the key's
        smaller requests): so has an embedding's made in one call (its share, when a failover
        resumed a split one); of several calls, the others may have been read: it stays."""
        failure.scrub(deployment.secrets)
        if read_nothing(failure.outcome, failure.scope) and lease.calls == 1:
            stack.push_async_callback(lease.settle_tokens, 0)  # a failure of it: logged
        await close_failed(stack)
        status, detail = failure.upstream_status, failure.message[:200]
        fp = lease.key.fingerprint
        ctx.record(deployment, fp, failure.outcome, started, upstream_status=status, detail=detail)
        await self.react(ctx, deployment, lease, failure, started=False)
        return failure

    async def react(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        failure: UpstreamFailure,
        *,
        started: bool,
    ) -> None:
        """Apply the Outcome table: to the key, to the deployment, to the conversation. The
        failure was the upstream's whoever leaves meanwhile: a cancellation (the caller gone
        during these round trips) is raised once they are done, never cuts them (the deployment
        left uncooled for everyone, the conversation unprotected from it)."""
        await uncut(self._react(ctx, deployment, lease, failure, started=started))

    async def _react(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        failure: UpstreamFailure,
        *,
        started: bool,
    ) -> None:
        outcome = failure.outcome
        if failure.retry_after_s is not None:
            # An upstream (or a ReportOutcome caller) may ask for years: cooldowns only extend,
            # so an uncapped hint would take the key out until the state store is wiped. No
            # wait at all (`Retry-After: 0`, a date gone by: a clock skew) is no hint: the
            # backoff decides, else the key would be hit again at once, 429 after 429.
            capped = min(failure.retry_after_s, self._cooldowns.retry_after_max_s)
            failure.retry_after_s = capped if capped > 0 else None
        await lease.report(outcome, failure.retry_after_s, failure.scope)
        if cools_deployment(outcome, failure.scope):
            now = self._clock.now()
            until = now + self._cooldowns.deployment_cooldown_s(failure.retry_after_s)
            until = await self._store.extend_deadline(deployment.cooldown_name, until)
            self._cooldown_log.cooled(deployment, failure, now, until)
        actions = thread_actions(outcome, deployment.protection, started)
        if actions.ban_provider:
            ctx.banned_providers.add(deployment.provider)
        if actions.any:
            await self.sessions.apply(
                ctx.session_id, ctx.requested_model, deployment.provider, deployment.name, actions
            )
        at = self._clock.monotonic()  # a session ban's, on the clock its window passes on
        record_reaction(ctx, deployment, lease, failure, actions, self._cooldowns, at)


def _queue_wait(ctx: RequestContext, deployment: Deployment) -> float:
    """How long a queued request (or a held-back retry) waits for the deployment's key (none
    at all for `queue_timeout_s: 0`, not the deadline's floor of a millisecond)."""
    queue_s = deployment.adapter.config.queue_timeout_s
    return ctx.attempt_timeout(queue_s) if queue_s > 0 else 0.0


async def _measured(
    deployment: Deployment, wait: float, leasing: Awaitable[KeyLease | Unavailable]
) -> KeyLease | Unavailable:
    """`leasing`, which may wait for a key up to `wait` seconds: the time in the queue measured."""
    with key_wait(deployment, wait):
        return await leasing


async def _in_time(
    ctx: RequestContext,
    attempt: Attempt[T],
    deployment: Deployment,
    lease: KeyLease,
    stack: AsyncExitStack,
) -> T:
    """`attempt`, unless the caller's deadline has passed (a timeout of 0, or a queue or store
    round trip took the rest): then no upstream is called, where it was given
    `attempt_timeout`'s millisecond, called and paid, for an answer nobody waited for."""
    if ctx.deadline_passed():
        stack.push_async_callback(lease.not_sent)  # nor counted in the key's rate windows
        raise DeadlineExceededError("The request's deadline passed before an upstream was called.")
    return await attempt(deployment, lease, stack)
