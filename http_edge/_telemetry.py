"""The edge's telemetry: its HTTP server spans and metrics, its gRPC client spans to the router,
and `GET /metrics`.

- FastAPI instrumentation with `exclude_spans=["receive", "send"]`: one SERVER span per request,
  not one more per SSE `send`; probes, `/metrics` and the admin pages are not traced.
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
from opentelemetry.trace import NoOpTracerProvider
from starlette.responses import Response

from router_service.telemetry import CONTENT_TYPE_LATEST, client_interceptors, current, metrics_text

from ._errors import EdgeError

__all__ = ["instrument", "router", "router_interceptors"]

router = APIRouter()

# Regular expressions (searched in the URL) of requests that get no span.
_UNTRACED = "/healthz,/readyz,/metrics,/admin"


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text of every metric this process records."""
    text = metrics_text()
    if text is None:
        raise EdgeError(404, "Metrics are not configured in this process.", code="not_found")
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def instrument(app: FastAPI) -> None:
    """Trace and measure the app's requests, when telemetry is on."""
    telemetry = current()
    if not (telemetry.tracing or telemetry.metering):
        return
    # The stable HTTP conventions (`http.response.status_code`, `http.server.request.duration`)
    # unless the operator chose otherwise; read once per process, on first instrumentation.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider or NoOpTracerProvider(),
        meter_provider=telemetry.meter_provider or NoOpMeterProvider(),
        excluded_urls=_UNTRACED,
        exclude_spans=["receive", "send"],
    )


def router_interceptors() -> list[Any]:
    """Interceptors for the router channel (none when tracing is off)."""
    return list(client_interceptors())
