"""A tiny OTLP/gRPC sink for the tracing variant: accepts trace and metric exports, answers with
an empty response, and counts what arrived.

    python -m benchmarks._otlp_sink --port N

The spans of the traced Switchboard must go somewhere real (a refused export would cost the
exporter differently from a collector that takes it), but a real collector is one more install
and one more CPU consumer on a 2-core machine. Requests stay raw bytes (no deserializer): an
empty byte string is a valid empty `Export…ServiceResponse`. Spans are counted with the generated
protobuf classes when they import (C protobuf: far below a millisecond per batch).

It prints a `SINK {json}` line with its counters every few seconds when they changed, and once
more on SIGTERM; the harness reads the last one from its log.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

TRACES = "opentelemetry.proto.collector.trace.v1.TraceService"
METRICS = "opentelemetry.proto.collector.metrics.v1.MetricsService"
PREFIX = "SINK "


def _span_counter() -> Callable[[bytes], int] | None:
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:  # counting spans is a nicety; requests and bytes still prove export
        return None

    def count(raw: bytes) -> int:
        request = ExportTraceServiceRequest.FromString(raw)
        resources = request.resource_spans
        return sum(len(scope.spans) for resource in resources for scope in resource.scope_spans)

    return count


class Counters:
    """Export requests, bytes and spans received; thread-safe (the server has a thread pool)."""

    def __init__(self, count_spans: Callable[[bytes], int] | None = None) -> None:
        self._lock = threading.Lock()
        self._count_spans = count_spans
        self.values: dict[str, int] = {
            "trace_requests": 0,
            "trace_bytes": 0,
            "spans": 0,
            "metrics_requests": 0,
            "metrics_bytes": 0,
        }

    def _add(self, **deltas: int) -> None:
        with self._lock:
            for key, delta in deltas.items():
                self.values[key] += delta

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)

    def export_traces(self, request: bytes, context: Any) -> bytes:
        spans = 0
        if self._count_spans is not None:
            try:
                spans = self._count_spans(request)
            except Exception:  # a malformed batch is counted as a request, not fatal
                spans = 0
        self._add(trace_requests=1, trace_bytes=len(request), spans=spans)
        return b""

    def export_metrics(self, request: bytes, context: Any) -> bytes:
        self._add(metrics_requests=1, metrics_bytes=len(request))
        return b""


def handlers(counters: Counters) -> list[grpc.GenericRpcHandler]:
    """Generic handlers for both Export methods; None (de)serializers keep the bytes raw."""
    return [
        grpc.method_handlers_generic_handler(
            TRACES, {"Export": grpc.unary_unary_rpc_method_handler(counters.export_traces)}
        ),
        grpc.method_handlers_generic_handler(
            METRICS, {"Export": grpc.unary_unary_rpc_method_handler(counters.export_metrics)}
        ),
    ]


def start(port: int, counters: Counters, host: str = "127.0.0.1") -> tuple[grpc.Server, int]:
    """A started server on host:port (0: any free port); returns it and the bound port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(handlers(counters))
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


def parse_counts(log_text: str) -> dict[str, int] | None:
    """The last counters line a sink wrote, or None."""
    lines = [ln for ln in log_text.splitlines() if ln.startswith(PREFIX)]
    if not lines:
        return None
    counts: dict[str, int] = json.loads(lines[-1][len(PREFIX) :])
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks._otlp_sink")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--every", type=float, default=5.0, help="seconds between counter lines")
    args = p.parse_args(argv)
    counters = Counters(_span_counter())
    server, port = start(args.port, counters)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"otlp sink on 127.0.0.1:{port}", flush=True)
    last: dict[str, int] = {}
    while not stop.wait(args.every):
        current = counters.snapshot()
        if current != last:
            print(PREFIX + json.dumps(current), flush=True)
            last = current
    server.stop(grace=1.0).wait(2.0)  # exports in flight finish and are counted
    print(PREFIX + json.dumps(counters.snapshot()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
