"""Prometheus exposition: the text of the current registry, and the router's scrape listener.

Metrics are recorded once, through the OpenTelemetry API (the per-request histograms through
`LocalHistograms`); the SDK's `PrometheusMetricReader` (opentelemetry-exporter-prometheus, as our
`PrometheusReader`) turns them into a `prometheus_client` registry of our own (not the library's
global one), which the edge serves at `GET /metrics` and the router on
`telemetry.prometheus_port`. OTLP export reads the same instruments.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import start_http_server

from router_service._listening import grpc_host, socket_host
from router_service.errors import ListenError
from router_service.telemetry._state import current

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["CONTENT_TYPE_LATEST", "PrometheusListener", "metrics_text"]

log = logging.getLogger("switchboard.telemetry")


def metrics_text(registry: CollectorRegistry | None = None) -> bytes | None:
    """The Prometheus text of `registry` (default: the current telemetry's); None when metrics
    are off."""
    registry = registry or current().registry
    return generate_latest(registry) if registry is not None else None


class PrometheusListener:
    """A small HTTP listener serving the registry at any path (`/metrics`), in a thread of its
    own so a scrape never waits for the event loop. `start()`, `close()` (idempotent), or
    `with`. A port that cannot be bound is a `ListenError`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry | None = None) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> int:
        registry = self._registry or current().registry
        if registry is None:
            raise RuntimeError("metrics are not configured: call configure_telemetry first")
        try:
            # `::` and `[::1]` alike, as `check_listening` took them.
            host = socket_host(self._host)
            server, thread = start_http_server(self._port, host, registry=registry)
        except OSError as exc:
            raise ListenError(
                f"cannot serve metrics on {self._host}:{self._port} (telemetry.prometheus_port, "
                f"--metrics-port): {exc.strerror or exc}"
            ) from exc
        self._server, self._thread = server, thread
        self.port = server.server_port
        log.info("Prometheus metrics on http://%s:%d/metrics", grpc_host(self._host), self.port)
        return self.port

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PrometheusListener:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
