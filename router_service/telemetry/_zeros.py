"""Counters created at 0 for every label set the config allows, when a runtime starts.

A counter series that first appears at its first increment appears at 1, and Prometheus's
`increase()` and `rate()` see no increase in a series' first sample: the first failed reload, the
first fallback of a deployment, the first cooldown of a provider would go unseen by the README's
alert and the dashboard. So the bounded label sets are written at 0 up front: model groups (and
pools, and deployments called by name) × their deployments × each operation (chat, embeddings,
each media operation, realtime) for fallbacks (a deployment that has no such endpoint is passed
over: moved on from, a fallback too), and for retries where the deployment serves it; providers
× scope for cooldowns, providers × kind for session bans. Config reloads are zeroed where reloads
are watched (`server.reloading`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from clients import MEDIA_PATHS
from router_service.telemetry import _attributes as attr
from router_service.telemetry._state import Telemetry

if TYPE_CHECKING:
    from router_service.engine import Deployment
    from router_service.runtime import Runtime

__all__ = ["zero_counters"]

_OPERATIONS = ("chat", "embeddings")
_SCOPES = ("key_model", "key", "deployment")
_BAN_KINDS = ("ban", "skip")


def zero_counters(telemetry: Telemetry, runtime: Runtime) -> None:
    """Create `runtime`'s counter series at 0 (adding 0 to one that exists changes nothing)."""
    metrics = telemetry.metrics
    for provider in runtime.pools:
        for scope in _SCOPES:
            metrics.cooldowns.add(0, {attr.PROVIDER: provider, attr.SCOPE: scope})
        for kind in _BAN_KINDS:
            labels = {attr.PROVIDER: provider, "switchboard.session.ban_kind": kind}
            metrics.session_bans.add(0, labels)
    planner = runtime.planner
    named = [(name, group.members) for name, group in planner.groups.items()]
    named += [(name, (deployment,)) for name, deployment in planner.deployments.items()]
    for name, members in named:
        for operation, serving in _served(members):
            for deployment in members:
                labels = {
                    attr.OPERATION: operation,
                    attr.MODEL_GROUP: name,
                    attr.DEPLOYMENT: deployment.name,
                }
                # A retry takes another key of the same deployment, one that serves the call.
                if len(deployment.pool.keys) > 1 and deployment in serving:
                    metrics.retries.add(0, labels)
                # One passed over (no such endpoint) is moved on from too: a fallback.
                if len(members) > 1:
                    metrics.fallbacks.add(0, labels)


def _served(members: Sequence[Deployment]) -> Iterator[tuple[str, Sequence[Deployment]]]:
    """Each operation a group may be called for, with the members that serve it: chat and
    embeddings all of them (a kind cannot tell which of its models embed), a media operation
    those whose kind has its endpoint, a Realtime session those marked for it (the others are
    passed over before a key is leased, but the route names them as attempts, and the request
    moves on from them)."""
    for operation in _OPERATIONS:
        yield operation, members
    for media in MEDIA_PATHS:
        serving = [d for d in members if d.adapter.cannot_media(media) is None]
        yield attr.media_operation(media), serving
    from router_service.engine._realtime import cannot_realtime  # the engine imports telemetry

    yield "realtime", [d for d in members if cannot_realtime(d) is None]
