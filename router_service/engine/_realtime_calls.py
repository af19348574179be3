"""The Executor's WebRTC Realtime calls (RouterService.CreateRealtimeCall, HangupRealtimeCall):
the caller's SDP offer posted to a realtime deployment of a kind that takes calls, through the
attempt loop (an offer is idempotent until answered: a refused connection, a 429 or a 5xx tries
the next key or deployment), and a call hung up through the deployment and key that made it.
Media never passes through the router: it answers the offer and is done."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from router_service.engine._attempts import Attempt, Walked
from router_service.engine._met import Inexpressible
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._planner import Planner
from router_service.engine._realtime import cannot_realtime
from router_service.errors import UpstreamFailure
from router_service.keys import KeyLease
from router_service.outcomes import Outcome
from router_service.providers import RealtimeCall, RealtimeCallAnswer

__all__ = ["PlacedCall", "RealtimeCalls", "cannot_call"]


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """The upstream's answer to an offer, the fingerprint of the key that got it, and that
    key's lease (given back once answered; the call's usage, read later, settles it)."""

    answer: RealtimeCallAnswer
    key_fingerprint: str
    lease: KeyLease | None = field(default=None, repr=False, compare=False)


def cannot_call(deployment: Deployment) -> UpstreamFailure | None:
    """Why `deployment` cannot take a WebRTC call (passed over before a key is leased): not
    marked `realtime: true`, or a kind without WebRTC calls (Azure's preview has none here)."""
    refused = cannot_realtime(deployment)
    if refused is not None or deployment.adapter.offers_realtime_calls:
        return refused
    why = f"{deployment.adapter.kind} offers no WebRTC Realtime calls"
    error = {"message": why, "type": "invalid_request_error", "param": "model", "code": None}
    return UpstreamFailure(Outcome.UNSUPPORTED_INPUT, why, upstream_error=error)


class RealtimeCalls:
    """`Executor.create_realtime_call` and `hangup_realtime_call`, a mixin over its loop."""

    planner: Planner

    async def _run(  # the Executor's
        self,
        ctx: RequestContext,
        plan: Plan,
        attempt: Attempt[PlacedCall],
        *,
        tokens: int = 0,
        record_success: bool = True,
        cannot: Inexpressible | None = None,
    ) -> Walked[PlacedCall]:
        raise NotImplementedError

    async def create_realtime_call(
        self, ctx: RequestContext, sdp: str, session: dict[str, Any]
    ) -> Walked[PlacedCall]:
        """The upstream's answer (and the key that got it), the deployment that gave it and
        the attempt's stack (its key lease: the caller closes it at once, a call holds no key
        slot once answered). The session config goes up with the deployment's own model."""

        async def attempt(deployment: Deployment, lease: KeyLease, _: AsyncExitStack) -> PlacedCall:
            timeout = ctx.attempt_timeout(deployment.timeouts.total_s)
            sent = {**session, "type": "realtime", "model": deployment.upstream_model}
            call = RealtimeCall(lease.key.secret, sdp, sent, timeout)
            answer = await deployment.adapter.create_realtime_call(call)
            return PlacedCall(answer, lease.key.fingerprint, lease)

        plan = await self.planner.plan(ctx)
        return await self._run(ctx, plan, attempt, cannot=cannot_call)

    async def hangup_realtime_call(
        self, deployment_name: str, key_fingerprint: str, call_id: str, timeout_s: float
    ) -> bool:
        """Hang up through the deployment and key that made the call; False when either is no
        longer configured (a reload removed it: the call ends when its session does). The
        upstream's refusal is scrubbed (`UpstreamFailure.scrub`): it may echo the key."""
        deployment = self.planner.deployments.get(deployment_name)
        key = None if deployment is None else deployment.pool.find(key_fingerprint)
        if deployment is None or key is None:
            return False
        timeout = min(timeout_s, deployment.timeouts.total_s)
        try:
            await deployment.adapter.hangup_realtime_call(call_id, key.secret, timeout)
        except UpstreamFailure as failure:  # what it said reaches the caller: as an attempt's
            failure.scrub(deployment.secrets)
            raise
        return True
