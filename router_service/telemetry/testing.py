"""In-memory telemetry for tests (ours and yours): spans, metric points, Prometheus text.

    with TelemetryCapture() as captured:
        ...  # start servers and clients inside: they pick the capture up
        spans = captured.spans()

OpenTelemetry's global providers are never touched, so captures can come and go in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest

from router_service.telemetry._histograms import LocalHistograms, MergesLocalHistograms
from router_service.telemetry._lean_trace import LeanTracerProvider
from router_service.telemetry._push_reader import PrometheusReader
from router_service.telemetry._state import SCOPE, VERSION, Telemetry, install

__all__ = ["TelemetryCapture"]


class _InMemoryReader(MergesLocalHistograms, InMemoryMetricReader):
    """The SDK's in-memory reader, with the local histograms in each collection."""


class TelemetryCapture:
    """Installs in-memory tracing and metrics while entered; puts the previous ones back.
    Histograms are aggregated as in production (`LocalHistograms`, with trace-based exemplars)."""

    def __init__(self, *, tracing: bool = True, metering: bool = True) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = LeanTracerProvider()  # the spans production makes
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        resource = Resource.create({})
        exemplars = TraceBasedExemplarFilter()
        scope = InstrumentationScope(SCOPE, VERSION)
        histograms = LocalHistograms(resource, scope, exemplar_filter=exemplars)
        self.reader = _InMemoryReader()
        self.reader.local_histograms = histograms
        self.registry = CollectorRegistry(auto_describe=True)
        self.meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[self.reader, PrometheusReader(self.registry, histograms)],
            exemplar_filter=exemplars,
        )
        self.telemetry = Telemetry(
            self.tracer_provider if tracing else None,
            self.meter_provider if metering else None,
            self.registry if metering else None,
            histograms if metering else None,
        )
        self._previous: Telemetry | None = None

    def __enter__(self) -> TelemetryCapture:
        self._previous = install(self.telemetry)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            install(self._previous)
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def spans(self) -> list[ReadableSpan]:
        """Every ended span so far, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def clear(self) -> None:
        self.exporter.clear()

    def prometheus_text(self) -> str:
        return generate_latest(self.registry).decode()

    def points(self, name: str) -> Iterator[tuple[dict[str, Any], Any]]:
        """(attributes, point) of every data point of the metric `name`."""
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            yield dict(point.attributes or {}), point
