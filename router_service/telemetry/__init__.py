"""Telemetry (DESIGN.md §8): OpenTelemetry traces and metrics, Prometheus text, JSON logs.

Setup happens once per process (`configure_telemetry`, called by the CLI). Everything else is
read from the current `Telemetry` when it runs: with nothing configured, spans are the API's
no-op spans and instruments are no-ops, and servers and clients get no tracing interceptors.

- `chat_span` / `embed_span` (the router request) and `attempt_span` (one upstream attempt);
- `record_plan`, `record_refusal`, `record_unsupported`, `record_reaction`: routing decisions
  as span events;
- `key_wait`: time to lease a key; `StateGauges`: keys, cooldowns and bans as gauges;
- `server_interceptors` / `client_observer`: gRPC tracing with context over metadata;
- `traced_transport`: the upstream HTTP call as a span;
- `metrics_text`, `PrometheusListener`: Prometheus exposition (with OTLP metrics on, the same
  aggregation is pushed to the collector: `_push_reader.py`).
"""

from typing import TYPE_CHECKING, Any

from router_service.telemetry._decisions import (
    key_wait,
    record_guardrail_matches,
    record_plan,
    record_reaction,
    record_refusal,
    record_unsupported,
)
from router_service.telemetry._gauges import StateGauges
from router_service.telemetry._grpc import client_observer, server_interceptors
from router_service.telemetry._histograms import LocalHistograms
from router_service.telemetry._instruments import LocalCounter
from router_service.telemetry._logging import JsonFormatter, Redactor
from router_service.telemetry._prometheus import (
    CONTENT_TYPE_LATEST,
    PrometheusListener,
    metrics_text,
)
from router_service.telemetry._request import (
    RequestSpan,
    chat_span,
    embed_span,
    media_span,
    realtime_span,
)
from router_service.telemetry._spans import AttemptHandle, AttemptSpan, RequestHandle, attempt_span
from router_service.telemetry._state import Telemetry, current, install
from router_service.telemetry.setup import (
    config_secrets,
    configure_telemetry,
    redact_secrets_of,
    shutdown_telemetry,
)

if TYPE_CHECKING:
    from router_service.telemetry._httpx import traced_transport


def __getattr__(name: str) -> Any:
    # Imported on first use: only the router's provider layer needs httpx, and importing it
    # (with the CLI extras it pulls in) is ~15 MiB of the edge's resident memory for nothing.
    if name == "traced_transport":
        from router_service.telemetry._httpx import traced_transport

        return traced_transport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONTENT_TYPE_LATEST",
    "AttemptHandle",
    "AttemptSpan",
    "JsonFormatter",
    "LocalCounter",
    "LocalHistograms",
    "PrometheusListener",
    "Redactor",
    "RequestHandle",
    "RequestSpan",
    "StateGauges",
    "Telemetry",
    "attempt_span",
    "chat_span",
    "client_observer",
    "config_secrets",
    "configure_telemetry",
    "current",
    "embed_span",
    "install",
    "key_wait",
    "media_span",
    "metrics_text",
    "realtime_span",
    "record_guardrail_matches",
    "record_plan",
    "record_reaction",
    "record_refusal",
    "record_unsupported",
    "redact_secrets_of",
    "server_interceptors",
    "shutdown_telemetry",
    "traced_transport",
]
