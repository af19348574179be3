"""The deployments held back from a walk (cooling, excluded for the session) that could take the
request: when they may serve it, or why they cannot (every key disabled: whose disables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.errors import NoCapacityError, NoUsableKeyError
from router_service.keys import Refusal, disabled_by_hand


def held_back_could(
    ctx: RequestContext,
    plan: Plan,
    able: list[Deployment],
    usable_at: Mapping[str, float] | None = None,
) -> NoCapacityError | None:
    """The refusal when a deployment that was not asked (`able`) could take the request: it
    may serve it later, so the request is not wrong. When: `usable_at` (the plan's)."""
    if not able:
        return None
    at = plan.usable_at if usable_at is None else usable_at
    usable = [at[d.name] for d in able if d.name in at]
    return NoCapacityError(
        not_now(ctx, plan, able) + ".",
        retry_after_s=max(0.0, min(usable) - ctx.clock.now()) if usable else None,
    )


def not_now(ctx: RequestContext, plan: Plan, able: list[Deployment]) -> str:
    now = ctx.clock.now()
    reasons = ", ".join(f"{d.name} ({plan.why(d.name, now)})" for d in able)
    model = ctx.requested_model
    return f"No deployment of `{model}` that takes this request may serve it now: {reasons}"


async def only_held_back(
    ctx: RequestContext, plan: Plan, able: list[Deployment]
) -> NoCapacityError:
    """Only held-back deployments (`able`) may serve: when they do, else every key disabled."""
    return await serving_later(ctx, plan, able) or await keys_disabled(ctx, plan, able)


async def keys_disabled(
    ctx: RequestContext, plan: Plan, able: list[Deployment]
) -> NoUsableKeyError:
    """Only held-back deployments could take the request, and every key of each is disabled:
    the service's trouble (a probe or an operator brings one back), not a wait nor the
    caller's to change."""
    why = await disabled_why(able)
    return NoUsableKeyError(f"{not_now(ctx, plan, able)}; every key of them is {why}.")


async def disabled_why(deployments: Sequence[Deployment]) -> str:
    """Why every key of `deployments` is disabled, as recorded with each disable
    (`disabled_by_hand`): an operator's last until enabled, the router's own end when a probe
    passes. Read only for the caller's error, never on the walk."""
    counts = [await disabled_by_hand(pool) for pool in dict.fromkeys(d.pool for d in deployments)]
    by_hand, disabled = sum(c[0] for c in counts), sum(c[1] for c in counts)
    enable = "`switchboard admin keys enable`"
    if by_hand and by_hand == disabled:
        return f"disabled by an operator: they serve again once enabled ({enable})"
    probed = "they are probed and come back by themselves when they work"
    if by_hand:
        return (
            f"disabled: some by an operator, until enabled ({enable}); "
            f"the others for invalid credentials or exhausted quota: {probed}"
        )
    return f"disabled (invalid credentials or exhausted quota); {probed}"


async def serving_later(
    ctx: RequestContext, plan: Plan, able: list[Deployment]
) -> NoCapacityError | None:
    """`held_back_could` as a retry hint: only the deployments a key of which serves again by
    itself (every key disabled: a probe, not the caller's patience, brings one back), usable
    when their keys are too (a key's 429 asking for 60 s outlasts a 15 s cooldown)."""
    now, keyed, usable_at = ctx.clock.now(), [], {}
    for deployment in able:
        unusable = await deployment.pool.unusable(deployment.upstream_model)
        if unusable is not None and unusable.reason in (Refusal.DISABLED, Refusal.DENIED):
            continue
        keyed.append(deployment)
        end = plan.usable_at.get(deployment.name)
        if end is not None:
            keys_in = 0.0 if unusable is None else unusable.retry_after_s or 0.0
            usable_at[deployment.name] = max(end, now + keys_in)
    return held_back_could(ctx, plan, keyed, usable_at)
