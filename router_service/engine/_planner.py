"""Planner: a model name → the ordered deployments to try for this request.

Resolve the name (deployment | group | pool), order by the strategy, drop what this session has
banned or skipped and what is on a global cooldown, put the session's sticky deployment first
while it is still allowed. If cooldowns alone left nothing, wait for the soonest to end when the
caller's deadline allows (no deadline does, but at a Realtime session's opening) and it ends
within `routing.max_cooldown_wait_s` (else the call is refused, with when it ends), else try it
anyway rather than refuse; if the session's skips left nothing, try a skipped one; only its
provider bans refuse.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clients.switchboard.v1 import chat_pb2
from router_service.clock import Clock
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._server_tools import (
    EXCLUDED,
    ServerTool,
    fitted,
    refused,
    server_tools_of,
    unable,
)
from router_service.errors import ModelNotFoundError, NoCapacityError
from router_service.routing import RoutingStats, order
from router_service.sessions import SessionState
from router_service.state import StateStore
from router_service.telemetry import record_plan


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    strategy: str
    members: tuple[Deployment, ...]
    pool: str | None = None  # set when this "group" is a pool over groups
    member_groups: tuple[str, ...] = ()  # a pool's groups
    # Each member's share under `weighted`, as this group gives it (a deployment named by two
    # groups is one object, its weight each group's own); empty: the deployments' own.
    weights: tuple[float, ...] = ()
    embeddings: bool = False  # it serves embeddings (a pool: all its groups do)


class Planner:
    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        groups: Mapping[str, Group],
        *,
        store: StateStore,
        clock: Clock,
        stats: RoutingStats,
        sessions: SessionState,
        rng: random.Random | None = None,
        max_cooldown_wait_s: float = math.inf,
    ) -> None:
        self.deployments = dict(deployments)
        self.groups = dict(groups)
        self._store = store
        self._clock = clock
        self._stats = stats
        self._sessions = sessions
        self._rng = rng if rng is not None else random.Random()
        self._max_cooldown_wait_s = max_cooldown_wait_s  # `routing.max_cooldown_wait_s`

    @property
    def measured(self) -> list[Deployment]:
        """Every deployment, each followed by its Responses API twin if it has one: what has a
        cooldown and routing statistics of its own (`Deployment.health_name`)."""
        members = self.deployments.values()
        return [d for each in members for d in (each, each.hosted_twin) if d is not None]

    def resolve(self, model: str) -> Group:
        """A group or pool by name, or the one deployment named `provider/model`."""
        group = self.groups.get(model)
        if group is not None:
            return group
        deployment = self.deployments.get(model)
        if deployment is not None:
            return Group(model, "ordered", (deployment,))
        raise ModelNotFoundError(model)

    async def plan_chat(self, ctx: RequestContext, params: chat_pb2.ChatParams) -> Plan:
        """A chat's plan: the deployments that can run the server tools it declares."""
        return await self.plan(ctx, server_tools_of(params))

    async def plan(
        self,
        ctx: RequestContext,
        server_tools: tuple[ServerTool, ...] = (),
        *,
        session: bool = False,
    ) -> Plan:
        """`server_tools`: the Anthropic server tools the request declares; the deployments
        whose upstream does not run them are left out (EXCLUDED), for good. `session`: a
        Realtime session's opening, whose lack of a deadline is the session's length, not the
        caller's patience (`_soonest`)."""
        group = self.resolve(ctx.requested_model)
        names = [d.name for d in group.members]
        # As called for this request (a chat deployment's Responses API twin for hosted tools),
        # ordered by the statistics of the API it is called on.
        members = [fitted(d, server_tools) for d in group.members]
        health = [d.health_name for d in members]
        indices, scores = await order(
            group.strategy, health, _weights(group), self._stats, self._rng
        )
        ordered = [members[i] for i in indices]
        plan = Plan([], scores=scores, strategy=group.strategy, pool=group.pool)
        cooled, banned, skipped, sticky = await self._read(ctx, ordered, names)
        for deployment in ordered:
            name = deployment.name
            if server_tools and unable(deployment, server_tools) is not None:
                plan.excluded[name] = EXCLUDED  # not held back: it never can
                continue
            ban, skip, cool = banned.get(deployment.provider), skipped.get(name), cooled.get(name)
            if ban is not None:
                plan.excluded[name] = "session_provider_ban"
            elif skip is not None:
                plan.excluded[name] = "session_skip"
            elif cool is not None:
                plan.excluded[name] = "cooldown"
            else:
                plan.candidates.append(deployment)
                continue
            plan.held_back.append(deployment)
            plan.usable_at[name] = max(ban or 0.0, skip or 0.0, cool or 0.0)
            if cool is not None:
                plan.cooling_until[name] = cool
        self._stick(plan, sticky)
        if not plan.candidates and await self._soonest(ctx, plan, ordered, cooled, session):
            # Back from a wait set aside, which took as long again as its place did: planned
            # afresh, what cooled meanwhile waited out again (or the one free now taken).
            return await self.plan(ctx, server_tools, session=session)
        ctx.plan = plan
        record_plan(plan)
        if server_tools and not plan.candidates and not plan.held_back:
            raise refused(ctx.requested_model, _run_by_none(server_tools, group.members))
        return plan

    async def _read(
        self, ctx: RequestContext, ordered: Sequence[Deployment], names: Sequence[str]
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float], str | None]:
        """(cooling deployments, the session's banned providers, its skipped deployments — each
        with the unix time it ends — and its sticky deployment for the model it asked for): all
        in one store call."""
        session, providers = ctx.session_id, sorted({d.provider for d in ordered})
        session_names = self._sessions.exclusion_names(session, providers, names)
        reading = await self._store.read(
            deadlines=[d.cooldown_name for d in ordered] + session_names,
            values=self._sessions.sticky_names(session, ctx.requested_model),
        )
        until, n = reading.deadlines, len(ordered)
        cooled = {d.name: end for d, end in zip(ordered, until[:n], strict=True) if end}
        banned, skipped = self._sessions.excluded_by(providers, names, until[n:])
        return cooled, banned, skipped, self._sessions.sticky_of(reading.values)

    def _stick(self, plan: Plan, sticky: str | None) -> None:
        """The session's sticky deployment goes first whenever it is still allowed for it —
        whatever the strategy drew."""
        if not sticky:
            return
        for i, deployment in enumerate(plan.candidates):
            if deployment.name == sticky:
                plan.candidates.insert(0, plan.candidates.pop(i))
                plan.sticky_hit = True
                return

    async def _soonest(
        self,
        ctx: RequestContext,
        plan: Plan,
        ordered: Sequence[Deployment],
        cooled: dict[str, float],
        session: bool,
    ) -> bool:
        """Nothing left to try: the deployment whose global cooldown ends first, once it ended
        when the caller's deadline allows (none does, but at a Realtime `session`'s opening:
        the edge gives every session none, and its caller's WebSocket waits unanswered; else
        at once, rather than refuse), among the cooling ones and the session's skipped ones
        (`_soonest_of`); a provider ban is a hard rule: the caller gets a typed error. A wait
        past `routing.max_cooldown_wait_s` (a 503's Retry-After cools for up to 300 s, and the
        client library's calls have no deadline by default) is no one's: none is chosen, and
        the caller is refused at once with when the soonest ends (`nothing_planned`). True:
        it waited set aside (`RequestContext.set_aside`), to be planned again: what it held
        was taken again once free, maybe long after the cooldown's end."""
        chosen = _soonest_of(plan, ordered, cooled)
        if chosen is None:
            return False
        wait = cooled.get(chosen.name, 0.0) - self._clock.now()
        remaining = ctx.remaining()
        if wait > 0 and (wait < remaining if remaining is not None else not session):
            if wait > self._max_cooldown_wait_s and not ctx.unattended:
                # Refused (`nothing_planned`): retry when its cooldown ends, then it is tried,
                # whatever longer session skip it is under (nothing else is left).
                plan.usable_at[chosen.name] = cooled[chosen.name]
                return False
            if remaining is None and ctx.stream_slot is not None:
                # Taken for `server.lease_ttl_s` (no deadline): it would lapse in a longer
                # wait, and its client open one stream more. As long again after the wait.
                await ctx.stream_slot.renew_stream_slot(wait + chosen.pool.lease_ttl_s)
            if ctx.set_aside is None:
                await self._clock.sleep(wait)
            else:  # what it holds others use meanwhile (a batch line's slot, a job's place)
                async with ctx.set_aside():
                    await self._clock.sleep(wait)
                return True
        plan.candidates.append(chosen)
        plan.forced = True
        del plan.excluded[chosen.name], plan.usable_at[chosen.name]
        return False


def _soonest_of(
    plan: Plan, ordered: Sequence[Deployment], cooled: dict[str, float]
) -> Deployment | None:
    """The first in strategy order of the cooling deployments and the session's skipped ones
    whose global cooldown ends first (none: at once), a cooling one before a skipped one at the
    same end. model-skip steers a conversation away from a deployment that failed it while
    another can serve; when none can, a skipped one is tried rather than the conversation
    refused for the whole thread cooldown (one blip of a model's only deployment did that). A
    deployment cooling for everyone cannot serve either: a skipped one whose cooldown is over
    is taken at once rather than one still cooling (waited out, or sent to while it cools).
    The chosen one's cooldown is waited out as any call's."""
    held = [d for d in ordered if plan.excluded.get(d.name) in ("cooldown", "session_skip")]
    if not held:
        return None
    skipped = {d.name for d in held if plan.excluded[d.name] == "session_skip"}
    return min(held, key=lambda d: (cooled.get(d.name, 0.0), d.name in skipped))


def _run_by_none(tools: tuple[ServerTool, ...], members: Sequence[Deployment]) -> ServerTool:
    """The first of `tools` no deployment runs (else the first: none runs them all)."""
    runs = frozenset().union(*(d.server_tools for d in members))
    return next((tool for tool in tools if tool.family not in runs), tools[0])


def nothing_planned(ctx: RequestContext, plan: Plan) -> NoCapacityError:
    """The refusal when the session's own rules (bans, skips) left no candidate, or cooldowns
    ending past `routing.max_cooldown_wait_s`: it names them, and says when the first excluded
    deployment is usable for the session again."""
    now = ctx.clock.now()
    reasons = ", ".join(f"{name} ({plan.why(name, now)})" for name in plan.excluded)
    usable = min(plan.usable_at.values(), default=None)
    return NoCapacityError(
        f"No deployment of `{ctx.requested_model}` may serve this request: {reasons}.",
        retry_after_s=None if usable is None else max(0.0, usable - now),
    )


def _weights(group: Group) -> Sequence[float]:
    return group.weights or [d.weight for d in group.members]
