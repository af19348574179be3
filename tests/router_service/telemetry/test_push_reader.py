"""`PrometheusPushReader`: one aggregation read by Prometheus scrapes and pushed to a real
OTLP/gRPC collector on loopback; both see the same cumulative totals, however the two
interleave. And when the OTLP exporter wants other data (delta, exponential histograms), the
readers stay two."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import Histogram, MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from router_service.telemetry._histograms import LocalHistograms
from router_service.telemetry._push_reader import (
    PrometheusPushReader,
    PrometheusReader,
    shares_prometheus_aggregation,
)
from router_service.telemetry.setup import _metric_readers
from tests.helpers import eventually
from tests.router_service.telemetry.otlp_receiver import Receiver

_HOUR_MS = 3_600_000  # no push of the ticker's own during a test that pushes by hand


def _exporter(receiver: Receiver | None = None, **kwargs: Any) -> OTLPMetricExporter:
    endpoint = receiver.endpoint if receiver is not None else "http://127.0.0.1:9"
    return OTLPMetricExporter(endpoint=endpoint, insecure=True, **kwargs)


def _histograms() -> LocalHistograms:
    return LocalHistograms(Resource.create({}), InstrumentationScope("switchboard"))


def _scrape(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _pushed(receiver: Receiver) -> dict[str, Any]:
    """The last data point the collector got per metric name."""
    return {
        metric.name: (metric.sum.data_points or metric.histogram.data_points)[-1]
        for _, metric in receiver.metrics
    }


@pytest.fixture
async def providers() -> AsyncIterator[list[MeterProvider]]:
    """Meter providers a test made, shut down after it (their readers' threads stop; the last
    push is a blocking gRPC call, made off the loop that serves the receiver)."""
    made: list[MeterProvider] = []
    yield made
    for provider in made:
        await asyncio.to_thread(provider.shutdown, 1_000)


async def test_scrapes_and_pushes_read_one_aggregation(
    receiver: Receiver, providers: list[MeterProvider]
) -> None:
    registry = CollectorRegistry()
    reader = PrometheusPushReader(_exporter(receiver), registry, interval_ms=_HOUR_MS)
    provider = MeterProvider(metric_readers=[reader])
    providers.append(provider)
    meter = provider.get_meter("probe")
    requests = meter.create_counter("probe.requests")
    latency = meter.create_histogram("probe.latency", unit="s")

    requests.add(2, {"outcome": "OK"})
    latency.record(0.5)
    assert _scrape(registry)["probe_requests_total"] == 2
    assert await asyncio.to_thread(reader.push)
    pushed = _pushed(receiver)
    assert pushed["probe.requests"].as_int == 2
    assert pushed["probe.latency"].count == 1

    # A push between two scrapes, a scrape between two pushes: each still sees the totals
    # (cumulative collection resets nothing the other consumer relies on).
    requests.add(3, {"outcome": "OK"})
    latency.record(1.5)
    assert await asyncio.to_thread(reader.push)
    assert _scrape(registry)["probe_requests_total"] == 5
    assert _scrape(registry)["probe_latency_seconds_count"] == 2
    pushed = _pushed(receiver)
    assert pushed["probe.requests"].as_int == 5
    assert pushed["probe.latency"].count == 2
    assert pushed["probe.latency"].sum == 2.0
    [requests_metric] = [m for _, m in receiver.metrics if m.name == "probe.requests"][-1:]
    cumulative = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert requests_metric.sum.aggregation_temporality == cumulative


async def test_local_histograms_are_scraped_and_pushed_with_their_exemplars(
    receiver: Receiver, providers: list[MeterProvider]
) -> None:
    histograms = LocalHistograms(
        Resource.create({"service.name": "probe"}),
        InstrumentationScope("switchboard"),
        exemplar_filter=TraceBasedExemplarFilter(),
    )
    registry = CollectorRegistry()
    reader = PrometheusPushReader(
        _exporter(receiver), registry, histograms=histograms, interval_ms=_HOUR_MS
    )
    providers.append(MeterProvider(metric_readers=[reader]))
    latency = histograms.create_histogram("probe.latency", unit="s")
    with TracerProvider().get_tracer("probe").start_as_current_span("request") as span:
        latency.record(0.5, {"outcome": "OK"})

    # A scrape in between shows the totals and leaves the exemplar to the push.
    assert _scrape(registry)["probe_latency_seconds_count"] == 1
    assert await asyncio.to_thread(reader.push)
    [(resource, metric)] = [(r, m) for r, m in receiver.metrics if m.name == "probe.latency"]
    assert resource["service.name"] == "probe"  # the histograms' resource: no SDK data here
    [point] = metric.histogram.data_points
    assert (point.count, point.sum) == (1, 0.5)
    [exemplar] = point.exemplars
    assert exemplar.as_double == 0.5
    assert exemplar.trace_id == span.get_span_context().trace_id.to_bytes(16, "big")

    latency.record(1.5, {"outcome": "OK"})
    assert await asyncio.to_thread(reader.push)
    last = [m for _, m in receiver.metrics if m.name == "probe.latency"][-1]
    [point] = last.histogram.data_points
    assert (point.count, point.sum, list(point.exemplars)) == (2, 2.0, [])  # cumulative; no span


async def test_the_ticker_pushes_and_shutdown_pushes_the_rest(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    reader = PrometheusPushReader(_exporter(receiver), registry, interval_ms=20)
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("probe").create_counter("probe.ticks")
    counter.add(1)

    async def ticked() -> bool:
        return "probe.ticks" in _pushed(receiver)

    await eventually(ticked, what="a push of the reader's own")
    counter.add(41)
    await asyncio.to_thread(provider.shutdown)
    assert _pushed(receiver)["probe.ticks"].as_int == 42  # the last push, at shutdown
    assert not reader._ticker.is_alive()
    assert "probe_ticks_total" not in _scrape(registry)  # unregistered from Prometheus


async def test_flush_reports_a_failed_export() -> None:
    registry = CollectorRegistry()
    # Nothing listens on the discard port; one short attempt, no retries past the timeout.
    reader = PrometheusPushReader(_exporter(timeout=0.2), registry, interval_ms=_HOUR_MS)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("probe").create_counter("probe.lost").add(1)
    try:
        assert not await asyncio.to_thread(reader.force_flush, 1_000)
        assert _scrape(registry)["probe_lost_total"] == 1  # Prometheus still reads it
    finally:
        await asyncio.to_thread(provider.shutdown, 1_000)


@pytest.mark.parametrize(
    ("env", "kwargs", "shared"),
    [
        ({}, {}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}, {}, False),
        ({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory"}, {}, False),
        (
            {
                "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": (
                    "base2_exponential_bucket_histogram"
                )
            },
            {},
            False,
        ),
        (
            {},
            {"preferred_aggregation": {Histogram: ExplicitBucketHistogramAggregation((1.0, 2.0))}},
            False,
        ),
    ],
)
def test_one_reader_only_when_the_exporter_wants_prometheus_data(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any], shared: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = _exporter(**kwargs)
    assert shares_prometheus_aggregation(exporter) is shared
    readers, merged = _metric_readers(CollectorRegistry(), [exporter], _histograms())
    try:
        kinds = [type(reader) for reader in readers]
        # The local histograms only where every reader merges them: else the SDK's are used.
        assert merged is shared
        assert isinstance(readers[0], PrometheusReader)
        if shared:
            assert kinds == [PrometheusPushReader]
            assert readers[0].local_histograms is not None
        else:
            assert kinds == [PrometheusReader, PeriodicExportingMetricReader]
            assert readers[0].local_histograms is None
    finally:
        for reader in readers:
            reader.shutdown(timeout_millis=1_000)


def test_without_otlp_prometheus_reads_alone() -> None:
    exporters: list[MetricExporter] = []
    histograms = _histograms()
    [reader], merged = _metric_readers(CollectorRegistry(), exporters, histograms)
    assert type(reader) is PrometheusReader
    assert merged and reader.local_histograms is histograms
