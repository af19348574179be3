"""A failed request's status when its span is a server's (`_request.py`): over the wire the
call's gRPC SERVER span, in one process (`switchboard serve`) the edge's HTTP SERVER span, whose
status HTTP's semantic conventions give by the answer's status code: left unset for a 4xx (the
caller's fault), an error for a 5xx. The router knows its outcome, not the status it becomes:
it says the outcome (`error.type`) and leaves its status message here (`leave_to_server`); the
server decides the status once, at the span's end, where its answer is known
(`router_failure`: the edge's middleware, the gRPC interceptor, which fails it). A span of no
server's (a caller's own span handed over) the router marks failed itself (`_spans.fail`).

Held weakly: a span whose server never asks (another HTTP server of the caller's, calling
through a `clients.LocalChannel`) takes its message with it when it goes."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from opentelemetry.trace import Span

from router_service.telemetry import _attributes as attr
from router_service.telemetry._logging import REDACTOR

__all__ = ["leave_to_server", "router_failure", "status_message"]

_waiting: WeakKeyDictionary[Span, str] = WeakKeyDictionary()


def status_message(kind: str, message: str) -> str:
    """A failed span's status description: its `error.type` and what happened, redacted as a
    log line is. What happened may quote what an upstream said (its own keys are scrubbed at
    the attempt: `UpstreamFailure.scrub`, not another provider's key, a token a gateway in
    front of it quotes, a `?key=` URL), and a trace goes where logs go: to a collector."""
    return REDACTOR(f"{kind}: {message}")[:300]


def leave_to_server(span: Span, kind: str, message: str) -> None:
    """The router's request failed on its server's span: `error.type` now, the status when the
    server answers (`router_failure`)."""
    span.set_attribute(attr.ERROR_TYPE, kind)
    _waiting[span] = status_message(kind, message)


def router_failure(span: Span) -> str | None:
    """The status message the router's failed request left for `span`, taken (once); None when
    the router did not fail it."""
    if not _waiting:  # no failure waiting: a successful request's end looks nothing up
        return None
    return _waiting.pop(span, None)
