"""The edge's telemetry: its HTTP server spans and metrics, its gRPC client spans to the router,
and `GET /metrics`.

- HTTP server metrics and SERVER spans from one lean middleware of ours
  (`_server_telemetry.py`): one span per request, none per SSE `send`; probes, `/metrics` and
  the admin pages are neither traced nor measured.
- The router client (made in `_app.py`) gets the tracing call observer, so the trace continues
  into the router over gRPC metadata (W3C traceparent): the router's SERVER span is the edge
  span's child, and the call has a CLIENT span only when it fails (the edge's span does nothing
  but the call); in one process (`switchboard serve`) the edge's span is handed to the router
  as it is.
Both only when telemetry is configured (`router_service.telemetry`); otherwise nothing is added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.middleware import Middleware
from starlette.responses import Response

from router_service.telemetry import CONTENT_TYPE_LATEST, current, metrics_text
from router_service.telemetry._state import SCOPE, VERSION

from ._errors import EdgeError
from ._server_telemetry import HttpServerTelemetry

if TYPE_CHECKING:
    from ._app import EdgeApp

__all__ = ["instrument", "router"]

router = APIRouter()

# Paths (and those under them) that get no span and are not measured: probes, scrapes, the
# admin pages.
_UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics", "/admin")


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text of every metric this process records."""
    text = metrics_text()
    if text is None:
        raise EdgeError(404, "Metrics are not configured in this process.", code="not_found")
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def instrument(app: EdgeApp) -> None:
    """Measure the app's requests when metrics are on, and trace them when tracing is on: the
    outermost middleware (call before adding others)."""
    telemetry = current()
    if not (telemetry.tracing or telemetry.metering):
        return
    meter = (
        telemetry.meter_provider.get_meter(SCOPE, VERSION)
        if telemetry.meter_provider is not None
        else None
    )
    tracer = telemetry.tracer if telemetry.tracing else None
    app.outer_middleware.insert(
        0,
        Middleware(
            HttpServerTelemetry,
            meter=meter,
            histograms=telemetry.histograms,
            tracer=tracer,
            excluded=_UNTRACED_PATHS,
        ),
    )
