"""LocalCounter: the per-request counters added up in the process, exported as cumulative sums per
attribute set, exactly as an SDK counter would be."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum

from router_service.telemetry._instruments import LocalCounter


def sums(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, object], ...], float]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[tuple[tuple[str, object], ...], float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    assert isinstance(metric.data, Sum) and metric.data.is_monotonic
                    for point in metric.data.data_points:
                        out[tuple(sorted((point.attributes or {}).items()))] = point.value
    return out


def test_totals_per_attribute_set_accumulate_across_collections() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = LocalCounter(provider.get_meter("t"), "c.requests", unit="1", description="d")
    counter.add(1, {"outcome": "OK", "stream": False})
    counter.add(1, {"stream": False, "outcome": "OK"})  # the same set, in another order
    counter.add(2, {"outcome": "RATE_LIMITED", "stream": True})
    assert sums(reader, "c.requests") == {
        (("outcome", "OK"), ("stream", False)): 2,
        (("outcome", "RATE_LIMITED"), ("stream", True)): 2,
    }
    counter.add(1, {"outcome": "OK", "stream": False})
    assert sums(reader, "c.requests")[(("outcome", "OK"), ("stream", False))] == 3  # cumulative
    provider.shutdown()
