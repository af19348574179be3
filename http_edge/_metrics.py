"""The edge's HTTP server metrics, as OpenTelemetry's HTTP semantic conventions name them:
`http.server.request.duration` (by method, route, status, scheme, protocol version, and
`error.type` for failures) and `http.server.active_requests` (by method and scheme).

Ours rather than the OpenTelemetry ASGI middleware's: that middleware collects a dozen span
attributes from the scope and headers and records five instruments on every request even when
no span is recorded, which cost the edge about a sixth of its throughput in `benchmarks/`. The
middleware still makes the edge's spans when tracing is on (`_telemetry.instrument`), with its
own metrics turned off, so each metric has one source.
"""

from __future__ import annotations

import time

from opentelemetry.metrics import Meter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._hot import HOT_PATHS

__all__ = ["HttpServerMetrics"]

# The semantic conventions' advisory buckets for http.server.request.duration (seconds).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class HttpServerMetrics:
    def __init__(self, app: ASGIApp, *, meter: Meter, excluded: tuple[str, ...] = ()) -> None:
        self.app = app
        self._excluded = excluded  # path prefixes that are not measured (probes, scrapes)
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=list(_BUCKETS),
        )
        self._active = meter.create_up_down_counter(
            "http.server.active_requests",
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self._excluded):
            await self.app(scope, receive, send)
            return
        status = 0
        active = {"http.request.method": scope["method"], "url.scheme": scope.get("scheme", "http")}

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: str | None = None
        started = time.perf_counter()
        self._active.add(1, active)
        try:
            await self.app(scope, receive, observed)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            self._active.add(-1, active)
            self._duration.record(time.perf_counter() - started, _attributes(scope, status, error))


def _attributes(scope: Scope, status: int, error: str | None) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "http.request.method": scope["method"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    # The route template (never the raw path: unmatched URLs must not grow the label set).
    route = getattr(scope.get("route"), "path", None)
    if route is None and scope["path"] in HOT_PATHS:
        route = scope["path"]
    if route is not None:
        attributes["http.route"] = route
    if status:
        attributes["http.response.status_code"] = status
    if error is None and status >= 500:
        error = str(status)
    if error is not None:
        attributes["error.type"] = error
    return attributes
