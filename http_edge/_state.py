"""What the routes share: settings, the router client of the running app, and the clock the
times it writes (a response's `created_at`) are read from."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from clients import RouterClient
from router_service._throttle import AdminThrottle
from router_service.clock import SYSTEM_CLOCK, Clock

from ._errors import EdgeError
from ._health import RouterHealth
from ._settings import EdgeSettings

__all__ = ["EdgeState", "edge_state"]


@dataclass
class EdgeState:
    settings: EdgeSettings
    client: RouterClient | None = None
    probe: RouterHealth | None = None
    clock: Clock = SYSTEM_CLOCK  # tests move a ManualClock
    # Wrong admin tokens, counted by client address (`_admin._authorize`).
    admin_throttle: AdminThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.admin_throttle = AdminThrottle(self.settings.admin_throttle, self.clock, "edge")

    def router(self) -> RouterClient:
        """The router client; only set while the app is running (between lifespan events)."""
        if self.client is None:
            raise _not_started()
        return self.client

    def health(self) -> RouterHealth:
        if self.probe is None:
            raise _not_started()
        return self.probe


def _not_started() -> EdgeError:
    return EdgeError(503, "The edge is not started.", code="not_ready", type="server_error")


def edge_state(request: HTTPConnection) -> EdgeState:
    state = request.app.state.edge
    assert isinstance(state, EdgeState)
    return state
