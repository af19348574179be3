"""Routing strategies and the statistics they learn from."""

from router_service.routing._stats import DeploymentStats, RoutingStats
from router_service.routing._strategies import order

__all__ = ["DeploymentStats", "RoutingStats", "order"]
