"""The upstream HTTP call traced: an httpx transport wrapper.

The call an attempt makes (marked `ATTEMPT_CALL` by the adapters) is recorded on the attempt's
span, which is that call's CLIENT span (`_spans.py`): its method, URL, server and status code;
its failure is the attempt's outcome, which the attempt's span records as it ends (`error.type`
the outcome's name, an error status). A refused call the attempt makes again (without what the
upstream refused) becomes a failed CLIENT span of its own, the attempt's span recording the call
made again. Every other request, and every one with `telemetry.upstream_http_spans` (the
trace's shape before), is a CLIENT span of its own.

Ours rather than opentelemetry-instrumentation-httpx, whose span ends when the response headers
arrive: for a streamed completion that is the first byte, not the call. Here the span ends when
the response body is closed, so an upstream stream's HTTP span lasts as long as the stream. No
trace context is sent upstream (providers are third parties); URLs are recorded without their
query string, and no header is recorded at all (keys travel in headers).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import httpx
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from router_service.telemetry._spans import (
    ATTEMPT_CALL,
    RefusedCall,
    claim_call,
    refuse_call,
)
from router_service.telemetry._state import current

__all__ = ["TracingTransport", "traced_transport"]


class _EndingStream(httpx.AsyncByteStream):
    """The response body; ends the span when it is closed (read to the end or abandoned)."""

    def __init__(self, inner: httpx.AsyncByteStream, span: Span) -> None:
        self._inner = inner
        self._span = span
        self._ended = False  # the SDK warns of a second end: a failed whole read, then aclose

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._recorded(aiter(self._inner))

    def parts(self) -> AsyncIterator[bytes] | None:
        """The body's parts, when the inner stream has a way of its own (the lean transport's:
        `body_parts`), recorded as `__aiter__` records a failure; else None. Read to its end,
        the span ends, as httpx's close of a response read to its end ends it (`aclose`)."""
        parts = getattr(self._inner, "parts", None)
        read = None if parts is None else parts()
        return None if read is None else self._recorded(read, end=True)

    async def _recorded(
        self, parts: AsyncIterator[bytes], end: bool = False
    ) -> AsyncIterator[bytes]:
        try:
            async for part in parts:
                yield part
                del part  # not held while the stream waits for the next
        except Exception as exc:
            self._span.set_attribute("error.type", type(exc).__qualname__)
            self._span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise
        if end:  # the inner stream gave its connection back as it ended (`body_parts`)
            self._end()

    def whole(self) -> Callable[[int], Awaitable[bytes]] | None:
        """How to read the body whole, when the inner stream has a way of its own (the lean
        transport's: `read_whole`); else None (read through `__aiter__`)."""
        whole = getattr(self._inner, "whole", None)
        read = None if whole is None else whole()
        return None if read is None else partial(self._read_whole, read)

    async def _read_whole(self, read: Callable[[int], Awaitable[bytes]], limit: int) -> bytes:
        """`read(limit)`, recorded as `__aiter__` records a failure; the span ends as `aclose`
        ends it (the inner stream closes itself once read)."""
        try:
            return await read(limit)
        except Exception as exc:
            self._span.set_attribute("error.type", type(exc).__qualname__)
            self._span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise
        finally:
            self._end()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._span.end()


# A call's attributes by its method and parsed URL (an attempt's call repeats its deployment's):
# building them reads five of httpx's URL properties, ~14 k instructions a call.
_call_attributes: dict[tuple[str, object], dict[str, str | int]] = {}
_CALL_ATTRIBUTES_MAX = 256


def _request_attributes(request: httpx.Request) -> dict[str, str | int]:
    """The call's HTTP attributes; the dict is shared by calls alike: read it only."""
    # httpx's parsed URL, a named tuple of its parts (all that the attributes are made of).
    key = (request.method, request.url._uri_reference)
    found = _call_attributes.get(key)
    if found is None:
        if len(_call_attributes) >= _CALL_ATTRIBUTES_MAX:
            _call_attributes.clear()
        found = _call_attributes[key] = _new_request_attributes(request)
    return found


def _new_request_attributes(request: httpx.Request) -> dict[str, str | int]:
    url = request.url
    return {
        "http.request.method": request.method,
        # From the parsed parts: `copy_with` would parse the URL again (~30 µs).
        "url.full": f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}",
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
    }


class TracingTransport(httpx.AsyncBaseTransport):
    """`own_spans`: every request a span of its own, the attempt's call too."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, tracer: Tracer, *, own_spans: bool = False
    ) -> None:
        self._inner = inner
        self._tracer = tracer
        self._own_spans = own_spans

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._own_spans and ATTEMPT_CALL in request.extensions:
            claimed = claim_call()
            if claimed is not None:
                attempt, refused = claimed
                if refused is not None:  # the attempt asks again: the refused call's own span
                    self._record_refused(refused)
                return await self._on_attempt(request, attempt)
        span = self._tracer.start_span(request.method, kind=SpanKind.CLIENT)
        if not span.is_recording():  # sampled out: nothing to record, nothing to end
            return await self._inner.handle_async_request(request)
        span.set_attributes(_request_attributes(request))
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_attribute("error.type", str(response.status_code))
            span.set_status(Status(StatusCode.ERROR))
        assert isinstance(response.stream, httpx.AsyncByteStream)
        # In place, as httpx's client wraps it next: a new Response would copy the headers.
        response.stream = _EndingStream(response.stream, span)
        return response

    async def _on_attempt(self, request: httpx.Request, attempt: Span) -> httpx.Response:
        """The attempt's call, on the attempt's span. Its failure is not marked here: it fails
        the attempt, whose span says so with the outcome; unless the attempt asks again (a
        retry without what the upstream refused), which makes the refusal kept here a failed
        span of its own (`_record_refused`). The body is left as it is: the attempt's span ends
        with the attempt, after the response's close."""
        started_ns = time.time_ns()
        attributes = _request_attributes(request)
        attempt.set_attributes(attributes)
        response = await self._inner.handle_async_request(request)
        status = response.status_code
        attempt.set_attribute("http.response.status_code", status)
        if status >= 400:
            refuse_call(attempt, RefusedCall(attributes, status, started_ns))
        return response

    def _record_refused(self, refused: RefusedCall) -> None:
        """The refused call of the attempt (current) now asking again: a CLIENT span under it,
        from the call's start to now (its error body was read and classified since)."""
        method = str(refused.attributes["http.request.method"])
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT, start_time=refused.started_ns)
        span.set_attributes(refused.attributes)
        span.set_attribute("http.response.status_code", refused.status)
        span.set_attribute("error.type", str(refused.status))
        span.set_status(Status(StatusCode.ERROR))
        span.end()

    async def aclose(self) -> None:
        await self._inner.aclose()


def traced_transport(
    transport: httpx.AsyncBaseTransport, *, own_spans: bool = False
) -> httpx.AsyncBaseTransport:
    """`transport`, traced when tracing is on (`own_spans`: each request a span of its own, the
    attempt's call too: `telemetry.upstream_http_spans`); as it is otherwise."""
    telemetry = current()
    if not telemetry.tracing:
        return transport
    return TracingTransport(transport, telemetry.tracer, own_spans=own_spans)
