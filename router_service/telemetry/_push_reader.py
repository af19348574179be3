"""The Prometheus readers: `PrometheusReader` (scraped; it adds the local histograms of
`_histograms.py` to each scrape) and `PrometheusPushReader`, one aggregation of every
measurement for Prometheus and OTLP.

With OTLP metrics on, the SDK's way is two readers — Prometheus's, collected on scrape, and a
periodic one pushing to the OTLP exporter — and the SDK aggregates every measurement once per
reader: each histogram record is hashed, locked, bucketed (and offered an exemplar) twice.
Counted with callgrind that second aggregation was ~6 % of a traced request's instructions in
each process. When the OTLP exporter wants what Prometheus shows anyway (cumulative
temporality, explicit-bucket histograms: the defaults), this reader serves both: Prometheus
collects it on scrape as before, and a daemon thread collects it every
`OTEL_METRIC_EXPORT_INTERVAL` and hands the same cumulative data to the exporter. Cumulative
collection does not reset what the other consumer sees, so both see the totals (and the local
histograms' exemplars, which Prometheus text cannot carry, are left for the push).

Unlike the SDK's periodic reader it does not restart its thread in a forked child: Switchboard's
processes do not fork once telemetry is configured.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from copy import copy
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from router_service.telemetry._histograms import LocalHistograms, MergesLocalHistograms

__all__ = ["PrometheusPushReader", "PrometheusReader", "shares_prometheus_aggregation"]

log = logging.getLogger("switchboard.telemetry")


def shares_prometheus_aggregation(exporter: MetricExporter) -> bool:
    """Whether `exporter` wants the data Prometheus's reader collects: cumulative temporality
    for every instrument and explicit-bucket histograms at the instruments' own boundaries.
    `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta` or exponential histograms need a
    reader of their own."""
    temporality: dict[type, AggregationTemporality] = exporter._preferred_temporality or {}
    aggregation: dict[type, Any] = exporter._preferred_aggregation or {}
    if any(t is not AggregationTemporality.CUMULATIVE for t in temporality.values()):
        return False
    for instrument, chosen in aggregation.items():
        explicit = isinstance(chosen, ExplicitBucketHistogramAggregation)
        if instrument is not Histogram or not explicit or chosen._boundaries is not None:
            return False
    return True


def _env_ms(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        log.warning("%s is not a number; using %s ms", name, default)
        return default
    return value if value > 0 else default


class PrometheusReader(MergesLocalHistograms, PrometheusMetricReader):
    """Prometheus's reader (no `otel_scope_info`), whose scrapes include `histograms`' points.
    Prometheus text has no exemplars: a scrape leaves them for the OTLP push."""

    takes_exemplars = False

    def __init__(
        self, registry: CollectorRegistry, histograms: LocalHistograms | None = None
    ) -> None:
        super().__init__(registry=registry, scope_info_enabled=False)
        self.local_histograms = histograms
        registry.unregister(self._collector)
        self._collector = _OwnScrapes(self, self._collector)  # type: ignore[assignment]
        registry.register(self._collector)


class _OwnScrapes:
    """The reader's collector as the registry calls it: each scrape translates what it
    collected itself. The exporter's collector puts each collection in one queue that a scrape
    empties whole, so of two scrapes at once (Prometheus's HA pair; the edge's `/metrics`
    beside the router's listener in one process) one answered every family twice — text
    Prometheus rejects — and the other nothing; a collection of the reader's own (a provider's
    `force_flush`) doubled the next scrape. A pull reader keeps nothing between scrapes."""

    def __init__(self, reader: PrometheusReader, translator: Any) -> None:
        self._reader = reader
        self._translator = translator  # the exporter's `_CustomCollector`, its settings

    def collect(self) -> Iterable[Metric]:
        data = self._reader.collect_merged(exemplars=self._reader.takes_exemplars)
        if data is None:
            return []
        translator = copy(self._translator)  # its own queue, holding this scrape's data only
        translator._callback, translator._metrics_datas = None, deque([data])
        families = list(translator.collect())
        self._translator._target_info = translator._target_info  # built once, then kept
        return families

    def add_metrics_data(self, data: Any) -> None:
        """A collection outside a scrape (`collect`, `force_flush`): nothing to keep."""


class PrometheusPushReader(PrometheusReader):
    """Prometheus's reader (scraped through `registry`) that also pushes its cumulative data to
    `exporter` every `interval_ms` (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s), on flush, and
    once more at shutdown."""

    def __init__(
        self,
        exporter: MetricExporter,
        registry: CollectorRegistry,
        *,
        histograms: LocalHistograms | None = None,
        interval_ms: float | None = None,
        timeout_ms: float | None = None,
    ) -> None:
        super().__init__(registry, histograms)
        self._exporter = exporter
        self._interval_s = (interval_ms or _env_ms("OTEL_METRIC_EXPORT_INTERVAL", 60_000)) / 1e3
        self._timeout_ms = timeout_ms or _env_ms("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)
        self._export_lock = threading.Lock()  # an exporter is never called concurrently
        self._stopped = threading.Event()
        self._ticker = threading.Thread(
            target=self._tick, name="switchboard-otlp-metrics", daemon=True
        )
        self._ticker.start()

    def push(self, timeout_millis: float | None = None) -> bool:
        """Collect now and export; False when the export failed."""
        timeout = timeout_millis or self._timeout_ms
        data = self.collect_merged(timeout, exemplars=True)
        if data is None:
            return True
        # The exporter's own calls must not be measured or traced (as the SDK's reader does).
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            with self._export_lock:
                result = self._exporter.export(data, timeout_millis=timeout)
        except Exception:  # an exporter's failure must not stop the ticker
            log.exception("exporting metrics failed")
            return False
        finally:
            detach(token)
        return result is MetricExportResult.SUCCESS

    def _tick(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.push()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        # Not the base class's flush: that would queue a collection for the next scrape.
        pushed = self.push(timeout_millis)
        return self._exporter.force_flush(timeout_millis=timeout_millis) and pushed

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._ticker.join(timeout=timeout_millis / 1e3)
        self.push(timeout_millis)  # what was measured since the last push
        self._exporter.shutdown(timeout_millis=timeout_millis)
        super().shutdown(timeout_millis=timeout_millis, **kwargs)
