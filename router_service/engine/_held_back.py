"""The deployments held back from a walk (cooling, excluded for the session) that could take the
request: when they may serve it, or why they cannot (every key disabled: whose disables); and
why one is held back that came to be excluded after the plan was made (`excluded_now`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.errors import NoCapacityError, NoUsableKeyError
from router_service.keys import Refusal, disabled_by_hand
from router_service.sessions import SessionState
from router_service.state import StateStore


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


@dataclass(frozen=True, slots=True)
class ExcludedNow:
    """Why a candidate of the plan is excluded now (another request of the conversation failed
    on it since the plan was made, or it cools for everyone since), named as the plan names
    it; when every rule on it is over; its global cooldown's end (0: it does not cool)."""

    reason: str  # "session_provider_ban", "session_skip", "cooldown"
    until: float
    cooling_until: float

    @property
    def last_resort(self) -> bool:
        """Only skipped by the session (model-skip): held back while another candidate may
        answer, tried once none did (as the planner tries one when the skips left nothing);
        a provider ban is a hard rule, a cooling one is withheld (`Met.withheld`)."""
        return self.reason == "session_skip" and not self.cooling_until

    def hold_back(self, plan: Plan, deployment: Deployment) -> None:
        """Name it in the plan with its reason (`Plan.why`), usable when the rules end."""
        name = deployment.name
        plan.excluded[name], plan.usable_at[name] = self.reason, self.until
        if self.cooling_until:
            plan.cooling_until[name] = self.cooling_until


async def excluded_now(
    store: StateStore, sessions: SessionState, ctx: RequestContext, deployment: Deployment
) -> ExcludedNow | None:
    """`ExcludedNow` for a deployment the walk reaches (None: it may be asked): its cooldown,
    the session's ban of its provider and skip of it, read in one store call."""
    providers, names = [deployment.provider], [deployment.name]
    exclusions = sessions.exclusion_names(ctx.session_id, providers, names)
    cool, *until = await store.deadlines([deployment.cooldown_name, *exclusions])
    banned, skipped = sessions.excluded_by(providers, names, until)
    ban, skip = banned.get(deployment.provider, 0.0), skipped.get(deployment.name, 0.0)
    if not (ban or skip or cool):
        return None
    reason = "session_provider_ban" if ban else "session_skip" if skip else "cooldown"
    return ExcludedNow(reason, max(ban, skip, cool), cool)
