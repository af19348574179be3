"""The routing engine: Planner, AttemptRunner, Executor, StreamGuard (DESIGN.md §1)."""

from router_service.engine._afterwork import Afterwork, FailedEnd
from router_service.engine._attempts import AttemptRunner
from router_service.engine._executor import Executor
from router_service.engine._met import upstream_refused
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._planner import Group, Planner
from router_service.engine._route_leases import RouteLeases
from router_service.engine._route_records import RouteLease
from router_service.engine._stream_guard import Idle, StreamGuard
from router_service.engine._stream_holds import Held, HoldRenewer, SlotOwner
from router_service.engine._truncation import truncates

__all__ = [
    "Afterwork",
    "AttemptRunner",
    "Deployment",
    "Executor",
    "FailedEnd",
    "Group",
    "Held",
    "HoldRenewer",
    "Idle",
    "Plan",
    "Planner",
    "RequestContext",
    "RouteLease",
    "RouteLeases",
    "SlotOwner",
    "StreamGuard",
    "truncates",
    "upstream_refused",
]
