"""`current_span`: the current span, as `opentelemetry.trace.get_current_span` finds it, for
the spans of ours without its check: `isinstance(span, Span)` is an ABC's (a Python-level
`__instancecheck__`), and a traced request asks for the current span ~20 times (the tracer,
each histogram's exemplar offer, the routing decision, the log line, the edge's request id).
`calls_apart`: the current span's context without the span, for in-process calls made together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace.propagation import _SPAN_KEY

__all__ = ["calls_apart", "current_span", "known_span_type"]

# The span types a context holds that are `trace.Span`s by construction: the API's non-recording
# span, and ours once imported (`_lean_trace.LeanSpan`; not before: the SDK stays unimported
# while tracing is off).
_KNOWN: set[type] = {trace.NonRecordingSpan}


def known_span_type(cls: type[trace.Span]) -> None:
    _KNOWN.add(cls)


def current_span(context: context_api.Context | None = None) -> trace.Span:
    """The span in `context` (default: the current one), or the invalid span."""
    found = (context if context is not None else context_api.get_current()).get(_SPAN_KEY)
    if type(found) in _KNOWN:
        return found  # type: ignore[return-value]  # a Context's values are `object`
    if found is None:  # no span (tracing off, or outside one)
        return trace.INVALID_SPAN
    return trace.get_current_span(context)  # someone else's span


@contextmanager
def calls_apart() -> Iterator[None]:
    """In one process, the router calls made in it (and in the tasks started in it) are handed
    the current span's context, not the span (`_grpc_client._HandedCall`): each request they make is
    a span of its own under it, none says what it did on that span. For calls made together
    for one HTTP request (a legacy completion of several prompts): none of them is the HTTP
    request, whose span would otherwise say one call's usage as the whole request's, or as its
    outcome the `CANCELLED` of a call the edge cancelled because another failed."""
    span = current_span()
    if not span.is_recording():  # nothing a request could take
        yield
        return
    apart = trace.NonRecordingSpan(span.get_span_context())
    token = context_api.attach(trace.set_span_in_context(apart))
    try:
        yield
    finally:
        context_api.detach(token)
