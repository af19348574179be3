"""The edge's telemetry: its HTTP server spans and metrics, its gRPC client spans to the router,
and `GET /metrics`.

- HTTP server metrics from our own middleware (`_metrics.py`); FastAPI instrumentation for spans
  only, with `exclude_spans=["receive", "send"]`: one SERVER span per request, not one more per
  SSE `send`; probes, `/metrics` and the admin pages are neither traced nor measured.
- The router channel gets the tracing interceptors, so the trace continues into the router over
  gRPC metadata (W3C traceparent).
Both only when telemetry is configured (`router_service.telemetry`); otherwise nothing is added.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from starlette.responses import Response

from router_service.telemetry import CONTENT_TYPE_LATEST, client_interceptors, current, metrics_text
from router_service.telemetry._state import SCOPE, VERSION

from ._errors import EdgeError
from ._metrics import HttpServerMetrics

__all__ = ["instrument", "router", "router_interceptors"]

router = APIRouter()

# Requests that get no span and are not measured: probes, scrapes, the admin pages.
_UNTRACED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/admin")
# The same as OpenTelemetry's excluded URLs (regular expressions searched in the URL).
_UNTRACED = ",".join(_UNTRACED_PREFIXES)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text of every metric this process records."""
    text = metrics_text()
    if text is None:
        raise EdgeError(404, "Metrics are not configured in this process.", code="not_found")
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def instrument(app: FastAPI) -> None:
    """Measure the app's requests when metrics are on, and trace them when tracing is on.

    Metrics come from `HttpServerMetrics` (the outermost of the app's own middlewares); spans
    from OpenTelemetry's FastAPI instrumentation, whose own metrics stay off."""
    telemetry = current()
    if telemetry.meter_provider is not None:
        meter = telemetry.meter_provider.get_meter(SCOPE, VERSION)
        app.add_middleware(HttpServerMetrics, meter=meter, excluded=_UNTRACED_PREFIXES)
    if telemetry.tracer_provider is None:
        return
    # The stable HTTP conventions (`http.response.status_code`) unless the operator chose
    # otherwise; read once per process, on first instrumentation.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=NoOpMeterProvider(),
        excluded_urls=_UNTRACED,
        exclude_spans=["receive", "send"],
    )


def router_interceptors() -> list[Any]:
    """Interceptors for the router channel (none when tracing is off)."""
    return list(client_interceptors())
