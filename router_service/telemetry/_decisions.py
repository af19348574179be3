"""Routing decisions as span events and counters: the plan, candidates skipped for their keys,
and the Outcome table's reactions (key cooled or disabled, deployment cooled, session banned).

Events go on the span they belong to: the plan on the request span, a reaction on the span of
the attempt whose failure caused it (also after a stream's first chunk, when that attempt is no
longer the current span)."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import TYPE_CHECKING

from router_service.outcomes import KeyAction, cools_deployment, key_action
from router_service.telemetry import _attributes as attr
from router_service.telemetry._current import current_span
from router_service.telemetry._spans import error_type, span_for
from router_service.telemetry._state import current

if TYPE_CHECKING:
    from router_service.config import CooldownsConfig
    from router_service.engine import Deployment, Plan, RequestContext
    from router_service.errors import UpstreamFailure
    from router_service.keys import KeyLease, Unavailable
    from router_service.sessions import ThreadActions

__all__ = [
    "key_wait",
    "record_decision",
    "record_decision_failed",
    "record_guardrail_matches",
    "record_plan",
    "record_reaction",
    "record_refusal",
]

GUARDRAILS = "switchboard.guardrails"


def record_guardrail_matches(rule: str, action: str, detector: str, count: int, side: str) -> None:
    """A guardrail's finds in one call's request or answer (`side`): counted, and the rule
    named on the current span (`switchboard.guardrails`, the rules that found something).
    Never the text found."""
    current().metrics.guardrail_matches.add(
        count, {"rule": rule, "action": action, "detector": detector, "side": side}
    )
    span = current_span()
    if span.is_recording():
        named = getattr(span, "attributes", None) or {}
        rules = list(named.get(GUARDRAILS, ()))
        if rule not in rules:
            span.set_attribute(GUARDRAILS, [*rules, rule])


def record_decision(
    group: str,
    client: str,
    outcome: str,
    deployment: Deployment | None = None,
    *,
    tokens: int | None = None,
) -> None:
    """A decision-API request (`gen_ai.operation.name` `route`) in the request metrics, once:
    when its outcome is known (its ReportOutcome, its lease's expiry as UNKNOWN, its PickRoute
    refused or cancelled). With the deployment picked, its one attempt there; with the tokens
    reported (`total_tokens`), the client's, as `gen_ai.token.type` `total`."""
    metrics = current().metrics
    group = group or attr.UNRESOLVED
    client = client or attr.ANONYMOUS_CLIENT
    labels = {attr.OPERATION: "route", attr.MODEL_GROUP: group, attr.OUTCOME: outcome}
    metrics.requests.add(1, {**labels, attr.STREAM: False, attr.CLIENT: client})
    if deployment is not None:
        where = {attr.PROVIDER: deployment.provider, attr.DEPLOYMENT: deployment.name}
        metrics.attempts.add(1, {**where, attr.MODEL_GROUP: group, attr.OUTCOME: outcome})
    if tokens:
        by_client = {attr.CLIENT: client, attr.MODEL_GROUP: group, attr.TOKEN_TYPE: "total"}
        metrics.client_tokens.add(tokens, by_client)


def record_decision_failed(ctx: RequestContext | None, exc: BaseException) -> None:
    """A PickRoute that ended without a route, in the request metrics (`record_decision`):
    refused (its error's outcome), or cancelled, which is read as a request reads it
    (`RequestContext.cancelled_at_deadline`: gRPC's rounding of the timeout and the way here):
    by its caller's deadline (DEADLINE_EXCEEDED, said on its SERVER span as `error.type`, which
    the call's status follows) or by its caller (CANCELLED). `ctx` None: refused before it was
    a request (no model), not counted, as a proxied call refused then is not."""
    if ctx is None:
        return
    outcome = read_cancellation(ctx) if isinstance(exc, asyncio.CancelledError) else None
    group = ctx.requested_model if ctx.plan is not None else ""
    record_decision(group, ctx.client, outcome or error_type(exc))


def read_cancellation(ctx: RequestContext) -> str:
    """How the cancellation of the call `ctx` is for is read, as a request reads it
    (`RequestContext.cancelled_at_deadline`): its caller's deadline's (DEADLINE_EXCEEDED,
    said on its SERVER span as `error.type`, which the call's status follows) or its
    caller's (CANCELLED)."""
    if not ctx.cancelled_at_deadline():
        return "CANCELLED"
    current_span().set_attribute("error.type", "DEADLINE_EXCEEDED")
    return "DEADLINE_EXCEEDED"


def record_plan(plan: Plan) -> None:
    """The routing decision on the current span: what was considered, excluded (and why), the
    strategy's sampled scores, whether a route was forced, the sticky hit."""
    span = current_span()
    if not span.is_recording():
        return
    decided: attr.Attributes = {attr.STRATEGY: plan.strategy, attr.STICKY_HIT: plan.sticky_hit}
    if plan.pool:
        decided[attr.POOL] = plan.pool
    span.set_attributes(decided)
    # What is empty (nothing excluded, no scores, not forced) is left out: every attribute costs
    # the SDK's validation and the export on every request.
    considered: attr.Attributes = {
        "switchboard.route.candidates": [d.name for d in plan.candidates]
    }
    if plan.excluded:
        considered["switchboard.route.excluded"] = list(plan.excluded)
        considered["switchboard.route.excluded_reasons"] = list(plan.excluded.values())
    if plan.scores:
        scored = sorted(plan.scores)
        considered["switchboard.route.scored"] = scored
        considered["switchboard.route.scores"] = [float(plan.scores[name]) for name in scored]
    if plan.forced:
        considered["switchboard.route.forced"] = True
    span.add_event("switchboard.route.plan", considered)


def record_refusal(deployment: Deployment, refusal: Unavailable) -> None:
    """A candidate passed over because no key of it could be leased (limits, health)."""
    span = current_span()
    if not span.is_recording():
        return
    attributes: attr.Attributes = {
        attr.DEPLOYMENT: deployment.name,
        "switchboard.route.skip_reason": f"keys_{refusal.reason.value}",
    }
    if refusal.retry_after_s is not None:
        attributes["switchboard.retry_after_s"] = refusal.retry_after_s
    span.add_event("switchboard.route.skipped", attributes)


def record_unsupported(deployment: Deployment) -> None:
    """A candidate passed over because its provider cannot express the request."""
    span = current_span()
    if span.is_recording():
        attributes: attr.Attributes = {
            attr.DEPLOYMENT: deployment.name,
            "switchboard.route.skip_reason": "unsupported_input",
        }
        span.add_event("switchboard.route.skipped", attributes)


def record_reaction(
    ctx: RequestContext,
    deployment: Deployment,
    lease: KeyLease,
    failure: UpstreamFailure,
    actions: ThreadActions,
    cooldowns: CooldownsConfig,
    at: float,
) -> None:
    """What the Outcome table did about one failed attempt, `at` on the runtime's clock's
    `monotonic()`."""
    t = current()
    provider = {attr.PROVIDER: deployment.provider}
    events: list[tuple[str, attr.Attributes]] = []
    key = {attr.KEY_FINGERPRINT: lease.key.fingerprint, attr.REQUEST_MODEL: lease.model}
    action = key_action(failure.outcome, failure.scope)
    if action in (KeyAction.COOL_KEY_MODEL, KeyAction.DISABLE_KEY_MODEL):
        t.metrics.cooldowns.add(1, {**provider, attr.SCOPE: "key_model"})
        denied = action is KeyAction.DISABLE_KEY_MODEL
        seconds = cooldowns.auth_disable_s if denied else failure.retry_after_s
        events.append(("switchboard.key.cooldown", key | _seconds(seconds)))
    elif action is not KeyAction.NONE:
        quota = action is KeyAction.DISABLE_KEY_LONG
        window = cooldowns.quota_disable_s if quota else cooldowns.auth_disable_s
        t.metrics.cooldowns.add(1, {**provider, attr.SCOPE: "key"})
        reason = {"switchboard.key.disable_reason": "quota" if quota else "auth"}
        events.append(("switchboard.key.disabled", key | reason | _seconds(window)))
    if cools_deployment(failure.outcome, failure.scope):
        t.metrics.cooldowns.add(1, {**provider, attr.SCOPE: "deployment"})
        seconds = cooldowns.deployment_cooldown_s(failure.retry_after_s)
        cooled = {attr.DEPLOYMENT: deployment.name} | _seconds(seconds)
        events.append(("switchboard.deployment.cooldown", cooled))
    if ctx.session_id and (actions.ban_provider or actions.skip_deployment):
        kind = "ban" if actions.ban_provider else "skip"
        t.metrics.session_bans.add(1, {**provider, "switchboard.session.ban_kind": kind})
        if actions.ban_provider:
            t.bans.add(deployment.provider, ctx.session_id, at)
        events.append(
            (f"switchboard.session.{kind}", {**provider, attr.DEPLOYMENT: deployment.name})
        )
    span = span_for(lease)
    if events and span.is_recording():
        for name, attributes in events:
            span.add_event(name, attributes)
        banned = [name.startswith("switchboard.session.") for name, _ in events]
        span.set_attribute(attr.COOLDOWN_APPLIED, not all(banned))
        span.set_attribute(attr.SESSION_BAN_APPLIED, any(banned))


def _seconds(value: float | None) -> attr.Attributes:
    return {} if value is None else {"switchboard.cooldown.seconds": float(value)}


class key_wait:
    """Time spent queued for a key of `deployment` (every key at its limit), when the lease may
    wait (`wait_s` > 0); an immediate lease is no queue and is not measured."""

    __slots__ = ("_deployment", "_started", "_wait_s")

    def __init__(self, deployment: Deployment, wait_s: float) -> None:
        self._deployment = deployment
        self._wait_s = wait_s
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._wait_s <= 0:
            return
        d = self._deployment
        labels = {attr.PROVIDER: d.provider, attr.DEPLOYMENT: d.name}
        current().metrics.key_queue_wait.record(time.perf_counter() - self._started, labels)
