"""LocalCounter: the per-request counters added up in the process, exported as cumulative sums per
attribute set, exactly as an SDK counter would be."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum

from router_service.telemetry._instruments import LocalCounter


def sums(
    reader: InMemoryMetricReader, name: str, *, monotonic: bool = True
) -> dict[tuple[tuple[str, object], ...], float]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[tuple[tuple[str, object], ...], float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    assert isinstance(metric.data, Sum) and metric.data.is_monotonic is monotonic
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


def test_a_negative_amount_leaves_a_counter_as_the_sdk_leaves_its_own() -> None:
    """A monotonic counter never goes down (Prometheus would read a reset and `increase()` a
    jump): a negative amount — usage an upstream reported below zero — is dropped, as the SDK's
    counter drops it. An up-down counter takes it."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("t")
    ours = LocalCounter(meter, "c.tokens", unit="{token}", description="d")
    sdk = meter.create_counter("c.sdk_tokens", unit="{token}")
    running = LocalCounter(meter, "c.running", unit="1", description="d", up_down=True)
    for amount in (10, -25, 5):
        ours.add(amount, {"client": "a"})
        sdk.add(amount, {"client": "a"})
        running.add(amount, {})
    assert sums(reader, "c.tokens") == sums(reader, "c.sdk_tokens") == {(("client", "a"),): 15}
    assert sums(reader, "c.running", monotonic=False) == {(): -10}
    provider.shutdown()
