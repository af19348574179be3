"""A committed stream that failed (its 200 sent, then the router's error event, a RouterError,
no summary, or the edge's own relay failing) is the server's failure, as a 5xx is: the relays
say so here (`failed` and its kinds), only on those paths, and the edge's SERVER span, current
while the stream is written, says it at its end (`_server_telemetry._end`: `error.type` and an
error status), unless the router's request failed that span already (one process: its outcome
says more, and wins). A caller that left mid-stream fails nothing (`SSEResponse`: `forget`).

Held weakly, by the span, as the router's own (`router_service.telemetry._served`)."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from opentelemetry import trace
from opentelemetry.trace import Span

from clients import RouterError
from clients.switchboard.v1.router_service_pb2 import StreamError
from clients.switchboard.v1.routing_pb2 import Outcome

from ._errors import router_error_body

__all__ = [
    "RELAY_FAILED",
    "TRUNCATED",
    "failed",
    "failed_by",
    "failed_with",
    "forget",
    "relay_failed",
    "status_of",
    "take",
    "truncated",
]

TRUNCATED = "The stream ended before it was complete."
RELAY_FAILED = "The edge failed while relaying the stream."

# The outcomes whose failure is the caller's to change (the router passes the upstream's error
# on, a 4xx, as `router_service.server._errors` does before a stream's start), and the throttled.
_CALLERS = frozenset(
    {
        Outcome.OUTCOME_BAD_REQUEST,
        Outcome.OUTCOME_CONTEXT_TOO_LONG,
        Outcome.OUTCOME_CONTENT_FILTERED,
        Outcome.OUTCOME_UNSUPPORTED_INPUT,
    }
)
_THROTTLED = frozenset({Outcome.OUTCOME_RATE_LIMITED, Outcome.OUTCOME_QUOTA_EXHAUSTED})
# A stream that broke off or went silent after its start: the server's internal failure.
_BROKEN = frozenset(
    {Outcome.OUTCOME_UNSPECIFIED, Outcome.OUTCOME_STALLED, Outcome.OUTCOME_TRUNCATED}
)

_failed: WeakKeyDictionary[Span, tuple[str, str]] = WeakKeyDictionary()


def failed(kind: str, message: str) -> None:
    """The stream being written failed: `kind` its `error.type`, `message` what the caller read."""
    span = trace.get_current_span()
    if span.is_recording():
        _failed[span] = (kind, message)


def failed_with(error: StreamError) -> None:
    """The router ended the stream with its error event: its outcome is the `error.type` (one
    this edge's protos do not name, from a newer router, is left to the error's code)."""
    known = Outcome.DESCRIPTOR.values_by_number.get(error.outcome) if error.outcome else None
    kind = known.name.removeprefix("OUTCOME_") if known is not None else ""
    failed(kind or error.code or error.type or "upstream_error", error.message)


def status_of(error: StreamError) -> int:
    """The HTTP status the edge's one taxonomy gives the router's error event, as it gives the
    same failure before the stream's start: the caller's 4xx, 429 when throttled, 500 for a
    stream that broke off or stalled, else 503 (no upstream could serve: an upstream's 5xx,
    529, or its refusal of its own key). Never the upstream's raw status (Anthropic's 529, a
    proxy's 502, a 401 for the router's key), which the other APIs' callers read as their own
    API's (`_routes_gemini`, `_routes_messages`)."""
    outcome = error.outcome
    if outcome in _CALLERS:
        return error.upstream_status if 400 <= error.upstream_status < 500 else 400
    if outcome in _THROTTLED:
        return 429
    return 500 if outcome in _BROKEN else 503


def failed_by(exc: RouterError) -> None:
    """The router call failed mid-stream: its reason, and the message the caller read (never
    gRPC's own text, which names addresses)."""
    details = exc.details
    message = str(router_error_body(details)["error"].get("message") or "")
    failed(details.reason or exc.grpc_code.name, message)


def truncated() -> None:
    """The router's stream ended without its summary."""
    failed("stream_truncated", TRUNCATED)


def relay_failed(exc: Exception) -> None:
    """The edge's relay failed (a bug, logged where it is caught)."""
    failed(type(exc).__qualname__, RELAY_FAILED)


def forget() -> None:
    """The caller left: what its stream's end looked like is not a server failure."""
    if _failed:
        _failed.pop(trace.get_current_span(), None)


def take(span: Span) -> tuple[str, str] | None:
    """The failure of the stream `span` answered with, taken (once); None for most."""
    if not _failed:  # no stream failed: a request's end looks nothing up
        return None
    return _failed.pop(span, None)
