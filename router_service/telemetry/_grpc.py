"""gRPC tracing (grpc.aio): the server interceptor, with W3C context over metadata.

Ours rather than opentelemetry-instrumentation-grpc's aio interceptors, which (0.66b) lose the
status set by `abort_with_status` (the only way our servicers fail), end a server span on
cancellation without an error status, do not propagate `CancelledError` through the client
interceptors (opentelemetry-python-contrib #3271) and, for server streams, end the client span
only when someone iterates the response. Here:

- the server span is outermost (before authentication), reads the final code from the context,
  and marks a cancelled call CANCELLED with an error status;
- the server span carries the caller's `x-request-id` as the edge's does
  (`http.request.header.x-request-id`), read only for a span that records;
- the client side is not an interceptor but the `RouterClient`'s call observer
  (`_grpc_client.py`);
- in one process (`clients.LocalChannel`: `switchboard serve`) the call has no CLIENT span, and
  a SERVER span only when it fails: the caller's current span (the edge's HTTP SERVER span) is
  handed over as it is (`LOCAL_PARENT`, not written as `traceparent` and parsed again); it is
  the router's request span too (`handed_call`, `_request.py`: the request's attributes go on
  it) and the parent of the attempts. A successful call's SERVER span said nothing the edge's
  span does not (the method, which the route and the operation name; the peer, `in-process`;
  status 0; what was said before the request started, its request's guardrails, is handed to
  it: `_Handed`), for ~4.5 % of a traced request (start, end, export); a failed call's code
  and message are said by a SERVER span from the call's start to its end.

Only `switchboard.*` services are traced: health checks and reflection stay out of traces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from contextvars import ContextVar, Token
from typing import Any

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)

from router_service._wrapped_handlers import WrappedHandlers
from router_service.telemetry._current import current_span, known_span_type
from router_service.telemetry._served import router_failure, status_message
from router_service.telemetry._state import current

__all__ = [
    "LOCAL_PARENT",
    "TracingServerInterceptor",
    "handed_call",
    "served_call",
    "server_interceptors",
]

_TRACED_PREFIX = "/switchboard."
# The metadata key of a parent span handed over in-process: its value is the caller's span
# itself, which only a caller in the router's process can send (a value off the wire is `str`
# or `bytes`). Its context carries the span's ids, flags and trace state: the W3C
# `traceparent` / `tracestate` pair's content, without writing and parsing them (~6 µs a call);
# the span itself takes the request's attributes (`handed_call`).
LOCAL_PARENT = "switchboard-local-parent"
_incoming: ContextVar[Sequence[tuple[str, Any]] | None] = ContextVar(
    "switchboard_incoming_metadata", default=None
)
# A call's SERVER span over the wire and its task: the span of the request it serves.
_served: ContextVar[tuple[Span, asyncio.Task[Any] | None] | None] = ContextVar(
    "switchboard_served_call", default=None
)
# The edge's attribute of a caller's `x-request-id` (`http_edge/_server_telemetry.py`), and the
# longest the edge forwards (`auth.audited_request_id`'s bound).
_REQUEST_ID = "http.request.header.x-request-id"
_REQUEST_ID_CHARS = 1024
Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _add_request_id(attributes: dict[str, Any], metadata: Sequence[tuple[str, Any]]) -> None:
    """The caller's `x-request-id`, as the edge's SERVER span has it (a request header, a list
    of one value): one the edge forwards (at most 1024 characters; gRPC sends printable ASCII
    only), so the id a user quotes finds the router's span too. Read for a span that records."""
    for key, value in metadata:
        if key == "x-request-id":
            if isinstance(value, str) and 0 < len(value) <= _REQUEST_ID_CHARS:
                attributes[_REQUEST_ID] = [value]
            return


def _finish(span: Span, code: grpc.StatusCode, details: str | None) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_attribute("error.type", code.name)
        span.set_status(Status(StatusCode.ERROR, status_message(code.name, details or "")))
    span.end()


# -- server --------------------------------------------------------------------------------------


class TracingServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """One SERVER span per RouterService / AdminService call, child of the caller's context."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._wrapped = WrappedHandlers(self._wrap)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(_TRACED_PREFIX):
            return handler
        # The handler runs next in this call's task: it reads the metadata grpc already
        # converted for the interceptors (`ctx.invocation_metadata()` converts it again).
        _incoming.set(handler_call_details.invocation_metadata)
        return self._wrapped.wrapped(method, handler)

    def _wrap(self, method: str, handler: Any) -> Any:
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            unary = self._unary(method, handler.unary_unary)
            return grpc.unary_unary_rpc_method_handler(unary, **options)
        if handler.unary_stream is not None:
            streaming = self._stream(method, handler.unary_stream)
            return grpc.unary_stream_rpc_method_handler(streaming, **options)
        if handler.stream_stream is not None:  # Realtime: its requests, an iterator, as they are
            streaming = self._stream(method, handler.stream_stream)
            return grpc.stream_stream_rpc_method_handler(streaming, **options)
        return handler

    def _start(
        self, method: str, ctx: grpc.aio.ServicerContext
    ) -> tuple[Span | _Handed, Token[context.Context]]:
        metadata = _incoming.get()
        _incoming.set(None)
        if metadata is None:
            metadata = ctx.invocation_metadata()
        parent, handed = _parent(metadata or ())
        if handed is not None:  # in one process: a span only should the call fail
            return handed, context.attach(parent)
        span = self._tracer.start_span(method.lstrip("/"), context=parent, kind=SpanKind.SERVER)
        if span.is_recording():  # a sampled-out call builds no attributes
            attributes: dict[str, Any] = _rpc_attributes(method)
            attributes["network.peer.address"] = ctx.peer()
            _add_request_id(attributes, metadata or ())
            span.set_attributes(attributes)
            _served.set((span, asyncio.current_task()))  # the request's span too (`served_call`)
        return span, context.attach(trace.set_span_in_context(span, parent))

    def _finish_server(
        self,
        method: str,
        span: Span | _Handed,
        ctx: grpc.aio.ServicerContext,
        exc: BaseException | None,
    ) -> None:
        if type(span) is _Handed:  # not `isinstance`: an ABC's (a Python-level check)
            code, details = _server_status(ctx, exc, span)
            if code is not grpc.StatusCode.OK:  # what the span would have said: it fails
                self._failed_in_process(method, span, ctx, code, details)
        elif span.is_recording():  # a sampled-out call has nothing to record: no status read
            code, details = _server_status(ctx, exc, span)
            failure = router_failure(span)  # its request's, which said its own `error.type`
            if failure is None:
                _finish(span, code, details)
                return
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            span.set_status(Status(StatusCode.ERROR, failure))
            span.end()

    def _failed_in_process(
        self,
        method: str,
        handed: _Handed,
        ctx: grpc.aio.ServicerContext,
        code: grpc.StatusCode,
        details: str | None,
    ) -> None:
        """An in-process call that failed: its SERVER span after all, from the call's start (the
        sampler asked now, as it would have been at the start), a sibling of the request span."""
        parent = trace.set_span_in_context(handed)
        span = self._tracer.start_span(
            method.lstrip("/"), parent, SpanKind.SERVER, start_time=handed.started_ns
        )
        if span.is_recording():
            attributes: dict[str, Any] = _rpc_attributes(method)
            attributes["network.peer.address"] = ctx.peer()
            _add_request_id(attributes, ctx.invocation_metadata() or ())
            if handed.attributes:  # what was said of the call before it failed (its guardrails)
                attributes.update(handed.attributes)
            span.set_attributes(attributes)
            _finish(span, code, details)

    def _unary(self, method: str, behavior: Unary) -> Unary:
        async def handle(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            span, token = self._start(method, ctx)
            try:
                response = await behavior(request, ctx)
            except BaseException as exc:
                self._finish_server(method, span, ctx, exc)
                raise
            finally:
                context.detach(token)
            self._finish_server(method, span, ctx, None)
            return response

        return handle

    def _stream(self, method: str, behavior: Streaming) -> Streaming:
        async def handle(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
            span, token = self._start(method, ctx)
            try:
                async with aclosing(behavior(request, ctx)) as messages:
                    async for message in messages:
                        yield message
            except BaseException as exc:
                self._finish_server(method, span, ctx, exc)
                raise
            else:
                self._finish_server(method, span, ctx, None)
            finally:
                context.detach(token)

        return handle


def _parent(metadata: Sequence[tuple[str, Any]]) -> tuple[context.Context, _Handed | None]:
    """The caller's context, and its span when handed over in-process (`LOCAL_PARENT`); else
    read from the W3C headers in the metadata (or none: a root span)."""
    carrier: dict[str, str] = {}
    for key, value in metadata:
        if isinstance(value, str):
            if not key.endswith("-bin"):
                carrier[key] = value
        elif key == LOCAL_PARENT and isinstance(value, Span):
            handed = _Handed(value)
            return trace.set_span_in_context(handed), handed
    return propagate.extract(carrier), None


class _Handed(NonRecordingSpan):
    """An in-process call's server side, the current span while its handler runs: the caller's
    span (the router's spans are its children; the request's attributes go on it, see
    `handed_call`), the call's task and its start, for the SERVER span made only should the
    call fail. What the router says of the call before its request starts, on the span then
    current (the rules a guardrail found in the request: `record_guardrail_matches`, in the
    authentication interceptor), is kept here: for the request's span of a call that succeeds,
    the SERVER span of one that fails; without it, nothing would say it."""

    __slots__ = ("attributes", "caller", "started_ns", "task")

    def __init__(self, caller: Span) -> None:
        super().__init__(caller.get_span_context())
        self.caller = caller
        self.task = asyncio.current_task()
        self.started_ns = time.time_ns()
        self.attributes: dict[str, Any] | None = None  # made by the first attribute (rare)

    def is_recording(self) -> bool:
        return True  # what is said here is kept (and dropped with a sampled-out request span)

    def set_attribute(self, key: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {}
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)


known_span_type(_Handed)


def handed_call() -> _Handed | None:
    """The current in-process call's server side (`_Handed`) when asked from the call's own
    task, i.e. by the request its handler serves; None for any other call (over the wire: the
    SERVER span, current, holds what was said) and for work the call started that outlives it
    (a background response, a realtime session's watch: tasks of their own)."""
    span = current_span()
    if type(span) is not _Handed or span.task is not asyncio.current_task():
        return None
    return span


def served_call() -> Span | None:
    """The current call's SERVER span (over the wire), when asked from the call's own task with
    that span current, i.e. by the request its handler serves: its request's span too (its
    attributes, events and outcome go on it: `_request.py`). None for work the call started that
    outlives it (a task of its own) and in one process (`handed_call`)."""
    served = _served.get()
    if served is None or served[1] is not asyncio.current_task():
        return None
    span = served[0]
    return span if current_span() is span else None


def _server_status(
    ctx: grpc.aio.ServicerContext, exc: BaseException | None, span: Span | _Handed
) -> tuple[grpc.StatusCode, str | None]:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # gRPC cancels a handler whose deadline passed as one whose caller left: the caller saw
        # DEADLINE_EXCEEDED. Its request said which (`RequestContext.cancelled_at_deadline`: the
        # caller's deadline may pass before ours, its cancellation come with time remaining),
        # a PickRoute and a ReportOutcome too (`read_cancellation`); a call with no deadline
        # read at all (ListModels, admin calls) by its time remaining then, 0.
        said = getattr(span, "attributes", None) or {}
        if said.get("error.type") == "DEADLINE_EXCEEDED" or ctx.time_remaining() == 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED, "the caller's deadline passed"
        return grpc.StatusCode.CANCELLED, "cancelled by the caller"
    code = ctx.code()
    if isinstance(code, grpc.StatusCode):
        return code, ctx.details()
    if exc is not None:
        return grpc.StatusCode.UNKNOWN, type(exc).__name__
    return grpc.StatusCode.OK, None


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptor, outermost, when tracing is on; else none (no cost)."""
    telemetry = current()
    return [TracingServerInterceptor(telemetry.tracer)] if telemetry.tracing else []
