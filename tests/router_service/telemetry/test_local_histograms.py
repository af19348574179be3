"""LocalHistograms: aggregated in the process, merged into what readers collect, and exported
exactly as the SDK's explicit-bucket histograms would be — points, Prometheus text, exemplars."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest

from router_service.telemetry._histograms import LocalHistograms, MergesLocalHistograms
from router_service.telemetry._push_reader import PrometheusReader

SCOPE = InstrumentationScope("switchboard", "1.0")
RESOURCE = Resource.create({"service.name": "probe"})
BOUNDS = [0.01, 0.1, 1.0]
# Values on, between and past the boundaries; one negative (dropped, as the SDK drops it).
VALUES = [0.0, 0.01, 0.010001, 0.05, 0.1, 1.0, 1.5, 7.0, -1.0]
LABELS = [{"outcome": "OK", "provider": "a"}, {"provider": "a", "outcome": "OK"}, {"outcome": "X"}]


class _Reader(MergesLocalHistograms, InMemoryMetricReader):
    pass


def _points(data: MetricsData | None, name: str) -> dict[tuple[Any, ...], HistogramDataPoint]:
    assert data is not None
    return {
        # Only histograms are asked for: their points are HistogramDataPoints.
        tuple(sorted((point.attributes or {}).items())): point  # type: ignore[misc]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


def _record_all(histogram: Any) -> None:
    for i, value in enumerate(VALUES):
        histogram.record(value, LABELS[i % len(LABELS)])


def _sdk_and_local() -> tuple[InMemoryMetricReader, _Reader, CollectorRegistry, CollectorRegistry]:
    """The same measurements through an SDK histogram and a local one, each with an in-memory
    reader and a Prometheus registry."""
    sdk_reader, sdk_registry = InMemoryMetricReader(), CollectorRegistry()
    sdk = MeterProvider(
        metric_readers=[sdk_reader, PrometheusReader(sdk_registry)], resource=RESOURCE
    )
    histogram = sdk.get_meter("switchboard", "1.0").create_histogram(
        "probe.duration", unit="s", description="d", explicit_bucket_boundaries_advisory=BOUNDS
    )
    _record_all(histogram)

    local = LocalHistograms(RESOURCE, SCOPE)
    local_reader, local_registry = _Reader(), CollectorRegistry()
    local_reader.local_histograms = local
    MeterProvider(
        metric_readers=[local_reader, PrometheusReader(local_registry, local)], resource=RESOURCE
    )
    _record_all(
        local.create_histogram(
            "probe.duration", unit="s", description="d", explicit_bucket_boundaries_advisory=BOUNDS
        )
    )
    return sdk_reader, local_reader, sdk_registry, local_registry


def test_points_are_the_sdk_histograms_points() -> None:
    sdk_reader, local_reader, _, _ = _sdk_and_local()
    sdk = _points(sdk_reader.get_metrics_data(), "probe.duration")
    local = _points(local_reader.get_metrics_data(), "probe.duration")
    assert sdk.keys() == local.keys() and len(local) == 2
    for key, expected in sdk.items():
        got = local[key]
        assert list(got.bucket_counts) == list(expected.bucket_counts), key
        assert list(got.explicit_bounds) == list(expected.explicit_bounds)
        assert (got.count, got.sum, got.min, got.max) == (
            expected.count,
            expected.sum,
            expected.min,
            expected.max,
        )
    ok = local[(("outcome", "OK"), ("provider", "a"))]
    # 0.0 and 0.01 in (-inf, 0.01]; 0.010001 and 0.1 in (0.01, 0.1]; 1.5 and 7.0 past 1.0.
    assert list(ok.bucket_counts) == [2, 2, 0, 2]


def test_prometheus_text_is_the_sdk_histograms_text() -> None:
    _, _, sdk_registry, local_registry = _sdk_and_local()

    def histogram_lines(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return sorted(line for line in text.splitlines() if "probe_duration" in line)

    lines = histogram_lines(local_registry)
    assert any('le="0.1"' in line for line in lines)
    assert lines == histogram_lines(sdk_registry)


def test_totals_accumulate_and_data_is_merged_into_the_scope() -> None:
    local = LocalHistograms(RESOURCE, SCOPE)
    reader = _Reader()
    reader.local_histograms = local
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    counter = provider.get_meter("switchboard", "1.0").create_counter("probe.count")
    assert reader.get_metrics_data() is None  # nothing recorded anywhere yet
    latency = local.create_histogram("probe.latency", explicit_bucket_boundaries_advisory=[1.0])
    assert local.create_histogram("probe.latency") is latency  # one instrument per name
    latency.record(0.5)

    # Only local data: it comes under the reader's resource and our scope.
    data = reader.get_metrics_data()
    assert data is not None
    [resource] = data.resource_metrics
    assert resource.resource.attributes["service.name"] == "probe"
    [scope] = resource.scope_metrics
    assert scope.scope == SCOPE

    # With the SDK's own data in the same scope: one scope holding both.
    counter.add(1)
    latency.record(2.0)
    data = reader.get_metrics_data()
    assert data is not None
    [scope] = data.resource_metrics[0].scope_metrics
    assert sorted(m.name for m in scope.metrics) == ["probe.count", "probe.latency"]
    [metric] = [m for m in scope.metrics if m.name == "probe.latency"]
    assert isinstance(metric.data, Histogram)
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    [point] = metric.data.data_points
    assert (point.count, point.sum, list(point.bucket_counts)) == (2, 2.5, [1, 1])


def test_exemplars_follow_the_filter_and_only_a_taking_collection_resets_them() -> None:
    tracing = TracerProvider()
    tracer = tracing.get_tracer("probe")
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("probe")
    local = LocalHistograms(RESOURCE, SCOPE, exemplar_filter=TraceBasedExemplarFilter())
    latency = local.create_histogram("probe.latency", explicit_bucket_boundaries_advisory=[1.0])

    latency.record(0.2)  # no span: no exemplar
    with unsampled.start_as_current_span("quiet"):
        latency.record(0.3)  # a span that is not sampled: none either
    with tracer.start_as_current_span("loud") as span:
        latency.record(0.4)
        latency.record(0.5)  # the bucket's last offer wins
        latency.record(3.0)
    ids = span.get_span_context()

    def exemplars(*, take: bool) -> list[tuple[float, int | None, int | None]]:
        [metric] = local.metrics(exemplars=take)
        [point] = metric.data.data_points
        return [(e.value, e.trace_id, e.span_id) for e in point.exemplars]

    assert exemplars(take=False) == []  # a Prometheus scrape: none shown, none taken
    expected = [(0.5, ids.trace_id, ids.span_id), (3.0, ids.trace_id, ids.span_id)]
    assert exemplars(take=True) == expected
    assert exemplars(take=True) == []  # taken: the next interval starts empty
