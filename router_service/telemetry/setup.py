"""`configure_telemetry`: once per process, from the config's `telemetry:` section and the
standard `OTEL_*` environment variables.

- Logs: JSON lines (or text) on stderr with trace and span ids, secrets masked.
- Metrics: recorded once configured when something reads them; Prometheus text from our own
  registry (edge `GET /metrics`, router `telemetry.prometheus_port`; a router with neither that
  port nor OTLP records none: `scraped=False`), and OTLP when `OTEL_METRICS_EXPORTER=otlp`
  or an OTLP endpoint is set — from the same aggregation as Prometheus when the exporter wants
  cumulative data (`_push_reader.py`). Exemplars only when metrics go out over OTLP (or
  `OTEL_METRICS_EXEMPLAR_FILTER` is set). The histograms recorded per request are aggregated
  by us (`_histograms.py`) and merged into what the readers collect.
- Traces: only when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP
  endpoint is set; otherwise no tracer provider exists and tracing costs nothing. Spans are
  ours (`_lean_trace.py`; the SDK's with the console exporter). Sampling follows
  `OTEL_TRACES_SAMPLER` / `_ARG` (default parentbased_always_on).
- OTLP over gRPC by default (spans encoded by `_otlp.py`, ~4x cheaper than the SDK's encoder);
  `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` (or the per-signal
  `…_TRACES_PROTOCOL` / `…_METRICS_PROTOCOL`) for HTTP. Endpoints, headers, timeouts, batching and
  the export interval are the SDK's own `OTEL_*` variables.
- `OTEL_SDK_DISABLED=true` turns traces and metrics off (logs stay configured).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace

from router_service.telemetry._logging import REDACTOR, configure_logging
from router_service.telemetry._state import SCOPE, VERSION, Telemetry, current, install

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import ExemplarFilter
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from router_service.config import EdgeFileConfig, SwitchboardConfig
    from router_service.runtime import Runtime
    from router_service.telemetry._histograms import LocalHistograms
    from router_service.telemetry._lean_trace import LeanTracerProvider

__all__ = [
    "config_secrets",
    "configure_telemetry",
    "redact_secrets_of",
    "redact_while_alive",
    "shutdown_telemetry",
]

log = logging.getLogger("switchboard.telemetry")
_configured: Telemetry | None = None
_redactor = REDACTOR


def configure_telemetry(
    service_name: str,
    config: SwitchboardConfig | EdgeFileConfig | None = None,
    *,
    secrets: Iterable[str] = (),
    scraped: bool = True,
) -> Telemetry:
    """Set up logs, metrics and traces for this process and make them current. The first call
    wins (OpenTelemetry's global providers can be set once); later calls only give the log
    redactor their config's secrets and `secrets` (in place of the last call's) and return the
    same telemetry. `scraped=False`: no Prometheus listener
    will read this process's metrics (a router without a metrics port), so without an OTLP
    exporter metrics are off, and neither `prometheus_client` nor its exporter is loaded."""
    global _configured
    if secrets:
        _redactor.replace("given", secrets)
    if config is not None:
        _redactor.replace(_source(config), config_secrets(config))
    if _configured is not None:
        return _configured
    section = config.telemetry if config is not None else None
    configure_logging(
        section.log_format if section else "json",
        section.log_level if section else "INFO",
        _redactor,
    )
    if _env("OTEL_SDK_DISABLED") == "true":
        _configured = current()
        return _configured
    exporters = _otlp_metric_exporters()
    metered = scraped or bool(exporters)
    # The SDK (its resources, metrics: ~1.5 MiB of an idle router) is imported only when
    # metrics or traces are on (benchmarks/README.md, "Where idle RSS goes").
    resource = _resource(service_name) if metered or _exporters("TRACES") else None
    tracer_provider = _tracer_provider(resource) if resource is not None else None
    if metered and resource is not None:
        _configured = _metering(resource, exporters, tracer_provider)
        if _configured.meter_provider is not None:
            metrics.set_meter_provider(_configured.meter_provider)
    else:  # nothing would read them: no instrument records, no exporter is loaded
        _configured = Telemetry(tracer_provider)
    if tracer_provider is not None:
        trace.set_tracer_provider(tracer_provider)
    install(_configured)
    log.info(
        "telemetry: traces %s, metrics %s",
        "on" if tracer_provider is not None else "off",
        ("prometheus" + (" + otlp" if exporters else ""))
        if _configured.metering
        else "off (no metrics port, no OTLP exporter)",
    )
    return _configured


def _metering(
    resource: Resource,
    exporters: list[MetricExporter],
    tracer_provider: LeanTracerProvider | TracerProvider | None,
) -> Telemetry:
    """Telemetry whose metrics Prometheus reads (and the OTLP `exporters`)."""
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from prometheus_client import CollectorRegistry

    from router_service.telemetry._histograms import LocalHistograms

    registry = CollectorRegistry(auto_describe=True)
    exemplar_filter = _exemplar_filter(exporters)
    histograms = LocalHistograms(
        resource, InstrumentationScope(SCOPE, VERSION), exemplar_filter=exemplar_filter
    )
    readers, merged = _metric_readers(registry, exporters, histograms)
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=readers,
        exemplar_filter=exemplar_filter or AlwaysOffExemplarFilter(),
    )
    return Telemetry(tracer_provider, meter_provider, registry, histograms if merged else None)


def shutdown_telemetry() -> None:
    """Flush and stop the exporters (the last spans and metrics of a stopping process)."""
    telemetry = _configured
    if telemetry is None:
        return
    for provider in (telemetry.tracer_provider, telemetry.meter_provider):
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def redact_secrets_of(config: SwitchboardConfig, *more: SwitchboardConfig) -> None:
    """Mask `config`'s secrets (and `more`'s: a reload's file and what of it is in force) in
    every log line from now on (a reloaded file's new keys), in place of the router's configs
    before them. A key they removed stays masked while a runtime that holds it lives
    (`redact_while_alive`); the same secrets again change nothing."""
    _redactor.replace(_source(config), [s for c in (config, *more) for s in config_secrets(c)])


def redact_while_alive(runtime: Runtime) -> None:
    """Mask `runtime`'s secrets while it lives, and each provider's while its key pool does:
    the calls, sessions, jobs and PickRoute leases begun before a reload replaced the runtime
    still use its pools' keys (and may log them) until they end."""
    config = runtime.config
    _redactor.hold(runtime, config_secrets(config))
    for name, pool in runtime.pools.items():
        _redactor.hold(pool, config.providers[name].secrets())


def _source(config: SwitchboardConfig | EdgeFileConfig) -> str:
    """Whose secrets a config's are for the redactor: a router's (reloaded) or an edge's."""
    from router_service.config import EdgeFileConfig as EdgePart

    return "edge" if isinstance(config, EdgePart) else "router"


def config_secrets(config: SwitchboardConfig | EdgeFileConfig | None) -> list[str]:
    """Every secret a config holds, for the log redactor (the edge's part holds only its own)."""
    from router_service.config import EdgeFileConfig as EdgePart

    if config is None:
        return []
    found: list[str] = []
    secrets = [config.edge.admin_token, config.edge.admin_router_key]
    if not isinstance(config, EdgePart):
        found = [secret for p in config.providers.values() for secret in p.secrets()]
        if config.state.url is not None:
            # The password only: the rest (scheme, host, port, db) is what an operator needs
            # to read in the log, and a URL without a password holds no secret at all.
            password = urlsplit(config.state.url.get_secret_value()).password
            found.extend([password] if password else [])
        # Callers' keys given as `key:` (one given by its hash is masked by shape only).
        found += [k.plain_key for c in config.auth.clients for k in c.keys if k.plain_key]
    found.extend(secret.get_secret_value() for secret in secrets if secret is not None)
    return found


def _env(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def _exporters(signal: str) -> list[str]:
    """`OTEL_{signal}_EXPORTER` as a list; unset means OTLP when an OTLP endpoint is set."""
    value = _env(f"OTEL_{signal}_EXPORTER")
    if not value:
        endpoint = _env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env(
            f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    return [name.strip() for name in value.split(",") if name.strip() not in ("", "none")]


def _protocol(signal: str) -> str:
    return (
        _env(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    )


def _resource(service_name: str) -> Resource:
    from opentelemetry.sdk.resources import Resource

    detected = Resource.create()
    attributes: dict[str, Any] = {"service.version": VERSION}
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        attributes["service.name"] = service_name
    return detected.merge(Resource.create(attributes))


def _tracer_provider(resource: Resource) -> LeanTracerProvider | TracerProvider | None:
    exporters = _exporters("TRACES")
    if not exporters:
        return None
    # Imported here: with tracing off (the default) neither the SDK's tracer (~0.3 MiB of an
    # idle process's memory) nor ours is loaded (benchmarks/README.md, 2026-12-05).
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from router_service.telemetry._lean_trace import LeanBatchSpanProcessor, LeanTracerProvider

    # Our lean spans (`_lean_trace.py`: the SDK's per-span machinery was most of tracing's
    # cost); the SDK's own only for the console exporter, which prints the SDK's span JSON.
    provider: LeanTracerProvider | TracerProvider = (
        TracerProvider(resource=resource)
        if "console" in exporters
        else LeanTracerProvider(resource=resource)
    )
    for name in exporters:
        if name == "otlp":
            provider.add_span_processor(LeanBatchSpanProcessor(_otlp_span_exporter()))
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported; use otlp or console", name)
    return provider


def _otlp_span_exporter() -> Any:
    if _protocol("TRACES") == "grpc":
        from router_service.telemetry._otlp import BytesOTLPSpanExporter

        return BytesOTLPSpanExporter()  # the SDK's exporter with a 4x cheaper encoder
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_metric_exporters() -> list[MetricExporter]:
    exporters: list[MetricExporter] = []
    for name in _exporters("METRICS"):
        if name == "otlp":
            if _protocol("METRICS") == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                    OTLPMetricExporter,
                )
            else:
                # The HTTP exporter's class under the same name: it is called the same way.
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                    OTLPMetricExporter,
                )
            exporters.append(OTLPMetricExporter())
        elif name != "prometheus":  # Prometheus is always on
            log.warning("OTEL_METRICS_EXPORTER=%s is not supported; use otlp or prometheus", name)
    return exporters


def _exemplar_filter(exporters: list[MetricExporter]) -> ExemplarFilter | None:
    """`OTEL_METRICS_EXEMPLAR_FILTER`; unset: `trace_based` when metrics leave over OTLP, else
    none (Prometheus text carries no exemplars, and with tracing on the SDK would sample one on
    every histogram record). None means no exemplars."""
    name = _env("OTEL_METRICS_EXEMPLAR_FILTER") or ("trace_based" if exporters else "always_off")
    if name == "always_off":
        return None
    from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, TraceBasedExemplarFilter

    if name == "always_on":
        return AlwaysOnExemplarFilter()
    if name != "trace_based":
        log.warning("OTEL_METRICS_EXEMPLAR_FILTER=%s is not known; using trace_based", name)
    return TraceBasedExemplarFilter()


def _metric_readers(
    registry: CollectorRegistry, exporters: list[MetricExporter], histograms: LocalHistograms
) -> tuple[list[MetricReader], bool]:
    """Prometheus's reader, pushing to the first OTLP exporter too when that exporter wants
    the same cumulative data (one aggregation per measurement instead of two); any other
    exporter gets a periodic reader of its own. The second value: whether every reader merges
    `histograms` (else the SDK's histograms are used: a delta or exponential exporter)."""
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    from router_service.telemetry._push_reader import (
        PrometheusPushReader,
        PrometheusReader,
        shares_prometheus_aggregation,
    )

    rest = list(exporters)
    push = rest.pop(0) if rest and shares_prometheus_aggregation(rest[0]) else None
    local = histograms if not rest else None  # a periodic reader of the SDK cannot merge them
    first = (
        PrometheusPushReader(push, registry, histograms=local)
        if push is not None
        else PrometheusReader(registry, local)
    )
    return [first, *(PeriodicExportingMetricReader(e) for e in rest)], local is not None
