"""gRPC tracing's client side: the `RouterClient`'s call observer (`ClientTracing`), not an
interceptor: grpc.aio's interceptor machinery runs every call through an extra task and Python
wrappers (with tracing on, ~15 % of the edge's CPU per request); the observer adds the context
to the metadata and learns the call's end from its done callback, so cancellation, `read()` and
`cancel()` behave as without tracing. A call is traced one of three ways:

- a CLIENT span of its own (`client_observer()`, any caller of the router), its context in the
  call's metadata (W3C `traceparent`);
- under its caller's span (`client_observer(call_spans=False)`: the edge, whose HTTP SERVER
  span does nothing but the call): the caller's context travels, the router's SERVER span is
  its child, and the call has a CLIENT span only when it fails (its code and details, from the
  call's start to its end, under the caller's span: a router that could not be reached, a
  caller that left). A call that succeeds said nothing there the SERVER spans on either side do
  not (the method; status 0), for a span's start, attributes, end and export a request;
- in one process (`clients.LocalChannel`: `switchboard serve`) the caller's span is handed over
  as it is (`LOCAL_PARENT`, `_grpc.py`): no CLIENT span.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Tracer

from clients import ObservedCall
from router_service.telemetry._current import current_span
from router_service.telemetry._grpc import LOCAL_PARENT, _finish, _rpc_attributes
from router_service.telemetry._state import current

__all__ = ["ClientTracing", "client_observer"]


def _sync_result(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The value of a finished call's `code()` / `details()` coroutine, read without a loop turn
    (a done call has its status: the coroutine returns at once). None if it would wait."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    return None


def _ended(call: Any) -> tuple[grpc.StatusCode, str | None]:
    """A done call's code and details (none read for a call that succeeded)."""
    if call.cancelled():
        return grpc.StatusCode.CANCELLED, "cancelled by the client"
    code = _sync_result(call.code()) or grpc.StatusCode.UNKNOWN
    return code, None if code is grpc.StatusCode.OK else _sync_result(call.details())


def _not_started(exc: BaseException) -> grpc.StatusCode:
    """The code of a call that could not start."""
    if isinstance(exc, grpc.RpcError):
        return exc.code()
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class _TracedCall:
    """One traced client call: a CLIENT span whose context travels in the call's metadata."""

    __slots__ = ("metadata", "span")

    def __init__(self, span: Span, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.span = span
        self.metadata = metadata

    def attach(self, call: Any) -> None:
        if self.span.is_recording():  # a sampled-out call has nothing to end
            call.add_done_callback(self._done)

    def fail(self, exc: BaseException) -> None:
        _finish(self.span, _not_started(exc), type(exc).__name__)

    def _done(self, call: Any) -> None:
        _finish(self.span, *_ended(call))


class _CallUnder:
    """A call under its caller's span, whose context travels in the metadata: a CLIENT span only
    should the call fail, from its start (the sampler asked then, as at the start)."""

    __slots__ = ("_method", "_parent", "_started_ns", "_tracer", "metadata")

    def __init__(
        self,
        tracer: Tracer,
        method: str,
        parent: Span,
        metadata: tuple[tuple[str, str | bytes], ...],
    ) -> None:
        self._tracer = tracer
        self._method = method
        self._parent = parent
        self._started_ns = time.time_ns()
        carrier: dict[str, str] = {}  # sampled out too: the context travels (sampled=0)
        propagate.inject(carrier)
        self.metadata = (*metadata, *carrier.items())

    def attach(self, call: Any) -> None:
        if self._parent.get_span_context().trace_flags.sampled:  # else nothing to record
            call.add_done_callback(self._done)

    def fail(self, exc: BaseException) -> None:
        if self._parent.get_span_context().trace_flags.sampled:
            _finish(self._span(), _not_started(exc), type(exc).__name__)

    def _done(self, call: Any) -> None:
        code, details = _ended(call)
        if code is not grpc.StatusCode.OK:
            _finish(self._span(), code, details)

    def _span(self) -> Span:
        parent = trace.set_span_in_context(self._parent)
        name = self._method.lstrip("/")
        span = self._tracer.start_span(name, parent, SpanKind.CLIENT, start_time=self._started_ns)
        if span.is_recording():
            span.set_attributes(_rpc_attributes(self._method))
        return span


class _HandedCall:
    """A call in one process: no span of its own. The caller's current span, whose context is
    handed over as it is (`LOCAL_PARENT`, read by `_grpc._parent`), sampled out too, is the
    parent of the router's spans: a CLIENT span would say what the edge's span says of the same
    hop."""

    __slots__ = ("metadata",)

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        parent = current_span()
        # A span among the metadata's strings: only a `LocalChannel` carries it.
        handed: Any = (LOCAL_PARENT, parent)
        self.metadata = (*metadata, handed) if parent.get_span_context().is_valid else metadata

    def attach(self, call: Any) -> None:
        """Nothing to end."""

    def fail(self, exc: BaseException) -> None:
        """Nothing to end."""


class ClientTracing:
    """The `CallObserver` of a `RouterClient` (`observer=`): a CLIENT span per call, ended from
    the call's done callback, so cancellation, `read()` and `cancel()` behave as untraced;
    without `call_spans`, a call under a span has one only should it fail (`_CallUnder`)."""

    def __init__(
        self, tracer: Tracer, *, in_process: bool = False, call_spans: bool = True
    ) -> None:
        self._tracer = tracer
        self._in_process = in_process
        self._call_spans = call_spans

    def start(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> ObservedCall:
        if self._in_process:
            return _HandedCall(metadata)
        if not self._call_spans:
            parent = current_span()
            if parent.get_span_context().is_valid:  # else a root: the call's own span
                return _CallUnder(self._tracer, method, parent, metadata)
        span = self._tracer.start_span(method.lstrip("/"), kind=SpanKind.CLIENT)
        if span.is_recording():  # a sampled-out call builds no attributes
            span.set_attributes(_rpc_attributes(method))
        carrier: dict[str, str] = {}  # sampled out too: the context travels (sampled=0)
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return _TracedCall(span, (*metadata, *carrier.items()))


def client_observer(*, in_process: bool = False, call_spans: bool = True) -> ClientTracing | None:
    """The observer that traces a `RouterClient`'s calls, when tracing is on; else None.
    `in_process`: the client's channel is a `clients.LocalChannel` to a router in this process,
    which the span's context is handed to as it is. `call_spans=False`: a call made under a
    span (the edge's HTTP SERVER span, which does nothing but the call) has no CLIENT span
    unless it fails; the router's SERVER span is that span's child."""
    telemetry = current()
    if not telemetry.tracing:
        return None
    return ClientTracing(telemetry.tracer, in_process=in_process, call_spans=call_spans)
