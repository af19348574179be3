"""Telemetry (DESIGN.md §8): OpenTelemetry traces and metrics, Prometheus text, JSON logs.

Setup happens once per process (`configure_telemetry`, called by the CLI). Everything else is
read from the current `Telemetry` when it runs: with nothing configured, spans are the API's
no-op spans and instruments are no-ops, and servers and clients get no tracing interceptors.

- `chat_span` / `embed_span` (the router request) and `attempt_span` (one upstream attempt);
- `record_plan`, `record_refusal`, `record_unsupported`, `record_reaction`: routing decisions;
  `record_decision`: a decision-API request (PickRoute) once its outcome is known
  as span events;
- `key_wait`: time to lease a key; `StateGauges`: keys, cooldowns and bans as gauges;
- `server_interceptors` / `client_observer`: gRPC tracing with context over metadata;
- `traced_transport`: upstream HTTP requests traced (`ATTEMPT_CALL` marks the one an attempt
  makes: recorded on the attempt's span);
- `metrics_text`, `PrometheusListener`: Prometheus exposition (with OTLP metrics on, the same
  aggregation is pushed to the collector: `_push_reader.py`).
"""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from router_service.telemetry._current import calls_apart
    from router_service.telemetry._decisions import (
        key_wait,
        read_cancellation,
        record_decision,
        record_decision_failed,
        record_guardrail_matches,
        record_plan,
        record_reaction,
        record_refusal,
        record_unsupported,
    )
    from router_service.telemetry._gauges import StateGauges
    from router_service.telemetry._grpc import server_interceptors
    from router_service.telemetry._grpc_client import client_observer
    from router_service.telemetry._histograms import LocalHistograms
    from router_service.telemetry._httpx import traced_transport
    from router_service.telemetry._instruments import DURATION_BUCKETS, LocalCounter
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
    from router_service.telemetry._spans import (
        ATTEMPT_CALL,
        AttemptHandle,
        AttemptSpan,
        RequestHandle,
        attempt_span,
    )
    from router_service.telemetry._state import Telemetry, current, install
    from router_service.telemetry.setup import (
        config_secrets,
        configure_telemetry,
        redact_secrets_of,
        redact_while_alive,
        shutdown_telemetry,
    )

# Each name's module, imported when the name is first read (clients/_lazy.py): the edge
# needs none of the router's spans, decisions and gauges; only the router's provider layer
# needs httpx (`traced_transport`), whose import is ~15 MiB of an edge's resident memory.
_WHERE = {
    "ATTEMPT_CALL": "_spans",
    "AttemptHandle": "_spans",
    "AttemptSpan": "_spans",
    "CONTENT_TYPE_LATEST": "_prometheus",
    "DURATION_BUCKETS": "_instruments",
    "JsonFormatter": "_logging",
    "LocalCounter": "_instruments",
    "LocalHistograms": "_histograms",
    "PrometheusListener": "_prometheus",
    "Redactor": "_logging",
    "RequestHandle": "_spans",
    "RequestSpan": "_request",
    "StateGauges": "_gauges",
    "Telemetry": "_state",
    "attempt_span": "_spans",
    "calls_apart": "_current",
    "chat_span": "_request",
    "client_observer": "_grpc_client",
    "config_secrets": "setup",
    "configure_telemetry": "setup",
    "current": "_state",
    "embed_span": "_request",
    "install": "_state",
    "key_wait": "_decisions",
    "media_span": "_request",
    "metrics_text": "_prometheus",
    "realtime_span": "_request",
    "record_decision": "_decisions",
    "record_decision_failed": "_decisions",
    "read_cancellation": "_decisions",
    "record_guardrail_matches": "_decisions",
    "record_plan": "_decisions",
    "record_reaction": "_decisions",
    "record_refusal": "_decisions",
    "record_unsupported": "_decisions",
    "redact_secrets_of": "setup",
    "redact_while_alive": "setup",
    "server_interceptors": "_grpc",
    "shutdown_telemetry": "setup",
    "traced_transport": "_httpx",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)


__all__ = [
    "ATTEMPT_CALL",
    "CONTENT_TYPE_LATEST",
    "DURATION_BUCKETS",
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
    "calls_apart",
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
    "read_cancellation",
    "realtime_span",
    "record_decision",
    "record_decision_failed",
    "record_guardrail_matches",
    "record_plan",
    "record_reaction",
    "record_refusal",
    "record_unsupported",
    "redact_secrets_of",
    "redact_while_alive",
    "server_interceptors",
    "shutdown_telemetry",
    "traced_transport",
]
