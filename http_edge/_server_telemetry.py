"""The edge's HTTP server telemetry, one ASGI middleware, as OpenTelemetry's HTTP semantic
conventions name it:

- metrics: `http.server.request.duration` (by method, route, status, scheme, protocol version,
  and `error.type` for failures) and `http.server.active_requests` (by method and scheme);
- a SERVER span per request (`POST /v1/chat/completions`), child of the caller's W3C
  `traceparent` when there is one, current while the request runs (the gRPC call to the router
  continues the trace), ended when the response is complete — for a stream, when its last event
  was written. No span per ASGI `send`/`receive`. In one process (`switchboard serve`) it is
  the router's request span too: the router says the request's attributes and outcome on it
  (an outcome's `error.type` is kept over the HTTP status's; its status is an error as the
  answer's is, not for a 4xx nor a caller that left a stream: `_end`). A stream that failed
  after its 200 fails the span as a 5xx does, with what the relay said of it
  (`_stream_failure`), unless the router's request failed it already.

Ours rather than OpenTelemetry's ASGI/FastAPI instrumentation: that middleware collects a dozen
attributes from the scope and headers and records five instruments on every request, sampled or
not, which cost the edge about a sixth of its throughput in `benchmarks/`. Here attributes are
built only for spans that record, and the route template comes from the routing that already
happened (never the raw path: unmatched URLs must not grow label sets or span names), and a
method outside the known ones is `_OTHER` (the one sent: `http.request.method_original`, on the
span), as the conventions want: known are RFC 9110's, PATCH and QUERY, or the list in
`OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` (comma-separated, replacing them). A caller's own
`x-request-id` (one the edge echoes: at most 1024 printable ASCII characters) is on the span as
`http.request.header.x-request-id`, so the id a user quotes finds its trace.
"""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router_service.telemetry import DURATION_BUCKETS, LocalCounter, LocalHistograms
from router_service.telemetry._served import router_failure, status_message

from ._errors import shown_path
from ._hot import HOT_PATHS
from ._metadata import forwardable
from ._stream_failure import take

__all__ = ["HttpServerTelemetry"]

_KNOWN_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
_KNOWN_METHODS_VARIABLE = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"
_OTHER = "_OTHER"
_CARRIERS = (b"traceparent", b"tracestate")
# A request header as OpenTelemetry's HTTP conventions name it: its values, a list.
_REQUEST_ID = "http.request.header.x-request-id"


def _known_methods() -> frozenset[str]:
    listed = os.environ.get(_KNOWN_METHODS_VARIABLE, "")
    if not listed.strip():  # empty is unset, as OpenTelemetry reads every variable
        return frozenset((*_KNOWN_METHODS, "TRACE"))
    return frozenset(method.strip() for method in listed.split(",") if method.strip())


class HttpServerTelemetry:
    def __init__(
        self,
        app: ASGIApp,
        *,
        meter: Meter | None,
        tracer: Tracer | None,
        histograms: LocalHistograms | None = None,
        excluded: tuple[str, ...] = (),  # paths: `_under`
    ) -> None:
        self.app = app
        self._tracer = tracer
        # Paths neither traced nor measured (probes, scrapes), with what is under them: not
        # what only begins like one (`/admin.php`, a scanner's: an unknown URL as any other).
        self._excluded = excluded
        self._known = _known_methods()
        self._duration = self._active = None
        if meter is not None:
            # Ours when the readers merge them (`LocalHistograms`): a record costs under 1 µs.
            self._duration = (histograms or meter).create_histogram(
                "http.server.request.duration",
                unit="s",
                description="Duration of HTTP server requests.",
                # Not HTTP's advisory buckets, which end at 10 s: a completion streams for minutes.
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
            self._active = LocalCounter(
                meter,
                "http.server.active_requests",
                unit="{request}",
                description="Number of active HTTP server requests.",
                up_down=True,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        # The common case costs one test: a path that begins like none of them.
        if kind != "http" or (
            scope["path"].startswith(self._excluded) and _under(scope["path"], self._excluded)
        ):
            if kind == "websocket" and self._tracer is not None:
                await self._session(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        status = 0
        method = scope["method"] if scope["method"] in self._known else _OTHER
        active = {"http.request.method": method, "url.scheme": scope.get("scheme", "http")}

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        span, token = self._start(scope, method)
        error: str | None = None
        started = time.perf_counter()
        if self._active is not None:
            self._active.add(1, active)
        try:
            await self.app(scope, receive, observed)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            attributes = _attributes(scope, method, status, error)
            if self._active is not None and self._duration is not None:
                self._active.add(-1, active)
                self._duration.record(time.perf_counter() - started, attributes)
            if span is not None:
                _end(span, attributes)
            if token is not None:
                context.detach(token)

    async def _session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket session (`/v1/realtime`): a SERVER span from its upgrade request (a GET)
        to its close, child of the caller's `traceparent` and current while it runs, as a
        request's (the router's spans are its children); its status is the upgrade's answer,
        101 or the denial's (403 for a close before the accept: the server's answer to it).
        No HTTP metrics: a session lasts minutes, not a request's time."""
        status = 0

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.http.response.start":  # the handshake refused
                status = message["status"]
            elif message["type"] == "websocket.close" and not status:  # refused by a close
                status = 403  # (no WebSocket route there): the server answers 403
            await send(message)

        span, token = self._start(scope, "GET")
        error: str | None = None
        try:
            await self.app(scope, receive, observed)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            assert span is not None  # traced: `_session` runs only with a tracer
            _end(span, _attributes(scope, "GET", status, error))
            context.detach(token)

    def _start(self, scope: Scope, method: str) -> tuple[Span | None, Any]:
        if self._tracer is None:
            return None, None
        carrier: dict[str, str] = {}
        request_id = None
        for name, value in scope.get("headers", ()):
            if name in _CARRIERS:
                carrier[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"x-request-id" and request_id is None:
                request_id = value.decode("latin-1")
        parent = propagate.extract(carrier)
        path = scope["path"]
        shown = _span_method(method)
        name = f"{shown} {path}" if path in HOT_PATHS else shown  # the route is set at the end
        client = scope.get("client")
        # Given at the start, where a sampler sees them (OpenTelemetry's HTTP conventions call
        # these sampling-relevant); the end adds only what the answer decided (`_ENDED`).
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.path": shown_path(path),  # not an attacker-sized id whole
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if client:
            attributes["client.address"] = client[0]
        if method == _OTHER:
            attributes["http.request.method_original"] = scope["method"]
        if request_id is not None and forwardable("x-request-id", request_id):
            # The caller's id, which it got back (`_request_id`) and quotes: its trace's key.
            attributes[_REQUEST_ID] = [request_id]
        span = self._tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        return span, context.attach(trace.set_span_in_context(span, parent))


def _under(path: str, excluded: tuple[str, ...]) -> bool:
    """Whether `path` is one of `excluded` or under one (`/admin/keys`, `/admin;x`)."""
    # The character after it: none (the path itself), or one that begins what is under it.
    return any(path[len(top) : len(top) + 1] in "/;" for top in excluded if path.startswith(top))


def _route(scope: Scope) -> str | None:
    """The route template (FastAPI's routing sets it; the hot paths are their own template)."""
    route = getattr(scope.get("route"), "path", None)
    if route is None and scope["path"] in HOT_PATHS:
        route = scope["path"]
    return route


def _span_method(method: str) -> str:
    """A span name's method: `HTTP` for one outside the known set."""
    return "HTTP" if method == _OTHER else method


def _attributes(scope: Scope, method: str, status: int, error: str | None) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    route = _route(scope)
    if route is not None:
        attributes["http.route"] = route
    if status:
        attributes["http.response.status_code"] = status
    if error is None and status >= 500:
        error = str(status)
    if error is not None:
        attributes["error.type"] = error
    return attributes


_ENDED = ("http.route", "http.response.status_code", "error.type")


def _end(span: Span, attributes: dict[str, str | int]) -> None:
    if span.is_recording():
        route = attributes.get("http.route")
        if route is not None:
            span.update_name(f"{_span_method(str(attributes['http.request.method']))} {route}")
        ended = {key: attributes[key] for key in _ENDED if key in attributes}
        # In one process the router's request, which says what it did on this span (the request
        # span is the edge's there), may have failed it: its outcome is the `error.type` (it says
        # more than a 502), its message the status's, decided here where the answer is known.
        failure, stream = router_failure(span), take(span)
        if failure is not None and _caller_left(span):
            failure = None  # nothing failed: over two processes the edge's span says so too
        if failure is not None:
            ended.pop("error.type", None)
            if not _callers_fault(attributes):
                span.set_status(Status(StatusCode.ERROR, failure))
        elif stream is not None:  # a committed stream failed (`_stream_failure`)
            ended["error.type"] = stream[0]
            span.set_status(Status(StatusCode.ERROR, status_message(*stream)))
        elif "error.type" in ended:
            span.set_status(Status(StatusCode.ERROR, str(ended["error.type"])))
        span.set_attributes(ended)
    span.end()


def _caller_left(span: Span) -> bool:
    """In one process: the router's request (this span's) was cancelled, its caller having
    left (a stream after its 200): its `error.type` says CANCELLED, the span is not failed
    (the relay failing first is said by `take`)."""
    return getattr(span, "attributes", {}).get("error.type") == "CANCELLED"


def _callers_fault(attributes: dict[str, str | int]) -> bool:
    """A 4xx answer: HTTP's conventions leave a SERVER span's status unset for it (`error.type`
    still says what failed). A failure in a 2xx answer (a stream that broke after its first
    event) is the server's, as a 5xx is."""
    return 400 <= int(attributes.get("http.response.status_code", 0)) < 500
