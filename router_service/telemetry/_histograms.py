"""Histograms aggregated in the process, for the ones recorded on every request.

The SDK's `Histogram.record` costs ~8 µs (~9 with an exemplar offer): a `Measurement` object, the
attributes cleaned and hashed per reader, a lock, and the view machinery around the bucket count.
The router records four or five per request, the edge one: ~4 % of the router's event loop.
`LocalHistogram.record` sorts the attributes into a tuple, finds the bucket with `bisect` and
adds under one uncontended lock: under a microsecond.

The data leaves through the readers, as the SDK's histograms would: a reader that mixes in
`MergesLocalHistograms` gets, on every collection, explicit-bucket histogram points with
cumulative temporality (counts, sum, min, max, one exemplar per bucket when the exemplar filter
lets one through), added to the `MetricsData` the SDK collected, under the same resource and
instrumentation scope. Prometheus text and OTLP exports are therefore the same as before.
Only cumulative readers can merge them: `configure_telemetry` uses the SDK's histograms when
a reader of its own is needed (a delta temporality, exponential histograms).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.sdk.metrics import Exemplar, ExemplarFilter, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

from router_service.telemetry._current import current_span

__all__ = ["LocalHistogram", "LocalHistograms", "MergesLocalHistograms"]

# The SDK's default boundaries, for a histogram created without advice.
_DEFAULT_BOUNDS: tuple[float, ...] = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0)
_DEFAULT_BOUNDS += (750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0)
SeriesKey = tuple[tuple[str, Any], ...]


# The last measurement offered to one bucket since the last collection: its value, time, span
# id and trace id. A tuple: made without a Python `__init__` (up to five a traced request).
_Exemplar = tuple[float, int, int | None, int | None]


class _Series:
    """One attribute set's aggregation."""

    __slots__ = ("count", "counts", "exemplars", "max", "min", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.exemplars: dict[int, _Exemplar] = {}


class LocalHistogram:
    """An explicit-bucket histogram, recorded like the SDK's (`record(amount, attributes)`)."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        bounds: Sequence[float],
        lock: threading.Lock,
        exemplar_filter: ExemplarFilter | None,
        clock: Callable[[], int],
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.bounds = tuple(float(b) for b in bounds)
        self.started_ns = clock()
        self._series: dict[SeriesKey, _Series] = {}
        self._lock = lock
        self._filter = exemplar_filter
        self._clock = clock

    def record(
        self,
        amount: float,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        if amount < 0:  # as the SDK: a histogram's values are non-negative
            return
        key = tuple(sorted(attributes.items())) if attributes else ()
        index = bisect_left(self.bounds, amount)
        exemplar = None
        if self._filter is not None:
            exemplar = self._exemplar(self._filter, amount, attributes, context)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(len(self.bounds) + 1)
            series.counts[index] += 1
            series.count += 1
            series.sum += amount
            series.min = min(series.min, amount)
            series.max = max(series.max, amount)
            if exemplar is not None:  # the bucket's last offer wins, as the SDK's reservoir
                series.exemplars[index] = exemplar

    def _exemplar(
        self,
        exemplar_filter: ExemplarFilter,
        amount: float,
        attributes: Mapping[str, Any] | None,
        context: Context | None,
    ) -> _Exemplar | None:
        if type(exemplar_filter) is TraceBasedExemplarFilter:  # the default: what it decides
            # A `SpanContext` is a tuple: unpacked, not read by its properties (Python calls).
            trace_id, span_id, _, flags, _, _ = current_span(context).get_span_context()
            if not flags & TraceFlags.SAMPLED:  # (the invalid span's is not)
                return None
            return (amount, self._clock(), span_id, trace_id)
        now = self._clock()
        current = context if context is not None else get_current()
        if not exemplar_filter.should_sample(amount, now, attributes, current):
            return None
        span_context = current_span(current).get_span_context()
        if not span_context.is_valid:
            return (amount, now, None, None)
        return (amount, now, span_context.span_id, span_context.trace_id)

    def points(self, now_ns: int, *, exemplars: bool = True) -> list[HistogramDataPoint]:
        """A cumulative point per attribute set; with `exemplars`, those offered since the last
        collection that took them (a collection without them leaves them for the next)."""
        snapshot = []
        with self._lock:
            for key, series in self._series.items():
                taken = series.exemplars if exemplars else {}
                counts = list(series.counts)
                snapshot.append(
                    (key, counts, series.count, series.sum, series.min, series.max, taken)
                )
                if exemplars:
                    series.exemplars = {}
        return [
            HistogramDataPoint(
                attributes=dict(key),
                start_time_unix_nano=self.started_ns,
                time_unix_nano=now_ns,
                count=count,
                sum=total,
                bucket_counts=counts,
                explicit_bounds=self.bounds,
                min=low,
                max=high,
                exemplars=[
                    # Every attribute of the measurement is on its point: nothing to filter.
                    Exemplar({}, *e)
                    for _, e in sorted(exemplars.items())
                ],
            )
            for key, counts, count, total, low, high, exemplars in snapshot
        ]


class LocalHistograms:
    """Creates local histograms (`create_histogram`, as a `Meter` would) and adds their points
    to collected `MetricsData` (`merged`), under `resource` and `scope`."""

    def __init__(
        self,
        resource: Resource,
        scope: InstrumentationScope,
        *,
        exemplar_filter: ExemplarFilter | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._resource = resource
        self._scope = scope
        self._filter = exemplar_filter  # None: no exemplars at all
        self._clock = clock
        self._lock = threading.Lock()  # one for all: records come from the event loop only
        self._histograms: dict[str, LocalHistogram] = {}

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> LocalHistogram:
        existing = self._histograms.get(name)
        if existing is not None:  # as a Meter: the same name is the same instrument
            return existing
        bounds = explicit_bucket_boundaries_advisory or _DEFAULT_BOUNDS
        histogram = LocalHistogram(
            name, unit, description, bounds, self._lock, self._filter, self._clock
        )
        self._histograms[name] = histogram
        return histogram

    def metrics(self, *, exemplars: bool = True) -> list[Metric]:
        """Every local histogram that has points, as the SDK's collection would show it."""
        now = self._clock()
        out = []
        for histogram in list(self._histograms.values()):
            points = histogram.points(now, exemplars=exemplars)
            if points:
                data = Histogram(points, AggregationTemporality.CUMULATIVE)
                out.append(Metric(histogram.name, histogram.description, histogram.unit, data))
        return out

    def merged(self, data: MetricsData | None, *, exemplars: bool = True) -> MetricsData | None:
        """`data` with the local histograms added to their scope (made when absent). Without
        `exemplars` (a consumer that drops them: Prometheus text), they stay for the next."""
        metrics = self.metrics(exemplars=exemplars)
        if not metrics:
            return data
        resources = list(data.resource_metrics) if data is not None else []
        if not resources:
            resources = [ResourceMetrics(self._resource, [], "")]
        first = resources[0]
        scopes = list(first.scope_metrics)
        for i, scope in enumerate(scopes):
            if scope.scope == self._scope:
                scopes[i] = replace(scope, metrics=[*scope.metrics, *metrics])
                break
        else:
            scopes.append(ScopeMetrics(self._scope, metrics, ""))
        resources[0] = replace(first, scope_metrics=scopes)
        return MetricsData(resources)


class MergesLocalHistograms(MetricReader):
    """A reader mixin: every collection it makes includes `local_histograms`' points. Set
    `local_histograms` before the first collection (the reader is built before the meter);
    `takes_exemplars = False` for a reader whose output has no place for them."""

    local_histograms: LocalHistograms | None = None
    takes_exemplars = True

    # `collect` is final in the SDK's annotations (a reader is meant to implement
    # `_receive_metrics` only), but the SDK does not call `_receive_metrics` when it
    # collected nothing of its own, and the local histograms may have points then.
    def collect(self, timeout_millis: float = 10_000) -> None:  # type: ignore[misc]
        if self.local_histograms is None or self._collect is None:
            super().collect(timeout_millis)
            return
        data = self.collect_merged(timeout_millis, exemplars=self.takes_exemplars)
        if data is not None:
            self._receive_metrics(data, timeout_millis=timeout_millis)

    def collect_merged(
        self, timeout_millis: float = 10_000, *, exemplars: bool = True
    ) -> MetricsData | None:
        """What the SDK collects for this reader, with the local histograms; None when there is
        nothing (or the reader belongs to no provider yet)."""
        # The SDK's collection callback, set when a provider owns this reader (its annotation
        # in the SDK is not what it is called with, nor what it returns).
        collect: Callable[..., MetricsData | None] | None = self._collect  # type: ignore[assignment]
        if collect is None:
            return None
        data = collect(self, timeout_millis=timeout_millis)
        if self.local_histograms is None:
            return data
        return self.local_histograms.merged(data, exemplars=exemplars)
