"""`current_span`: the current span, as `opentelemetry.trace.get_current_span` finds it, for
the spans of ours without its check: `isinstance(span, Span)` is an ABC's (a Python-level
`__instancecheck__`), and a traced request asks for the current span ~20 times (the tracer,
each histogram's exemplar offer, the routing decision, the log line, the edge's request id)."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace.propagation import _SPAN_KEY

__all__ = ["attach_span", "current_context", "current_span", "known_span_type"]

# The span types a context holds that are `trace.Span`s by construction: the API's non-recording
# span, and ours once imported (`_lean_trace.LeanSpan`; not before: the SDK stays unimported
# while tracing is off).
_KNOWN: set[type] = {trace.NonRecordingSpan}


# The current context, as `context_api.get_current()` finds it without its two Python calls
# (`get_current`, then the runtime context's): the default runtime context's ContextVar, read
# directly; another runtime context (`OTEL_PYTHON_CONTEXT`) through the API.
_VAR = getattr(context_api._RUNTIME_CONTEXT, "_current_context", None)
current_context: Callable[[], context_api.Context] = (
    _VAR.get if isinstance(_VAR, ContextVar) else context_api.get_current
)


def attach_span(
    span: trace.Span, parent: context_api.Context | None = None
) -> Token[context_api.Context]:
    """Make `span` current, in `parent` (default: the current context); `context.detach` the
    token. What `context.attach(trace.set_span_in_context(span, parent))` does, without its
    four to six Python calls (four spans a traced request are made current)."""
    made = context_api.Context(
        {**(parent if parent is not None else current_context()), _SPAN_KEY: span}
    )
    if isinstance(_VAR, ContextVar):
        return _VAR.set(made)
    return context_api.attach(made)


def known_span_type(cls: type[trace.Span]) -> None:
    _KNOWN.add(cls)


def current_span(context: context_api.Context | None = None) -> trace.Span:
    """The span in `context` (default: the current one), or the invalid span."""
    found = (context if context is not None else current_context()).get(_SPAN_KEY)
    if type(found) in _KNOWN:
        return found  # type: ignore[return-value]  # a Context's values are `object`
    if found is None:  # no span (tracing off, or outside one)
        return trace.INVALID_SPAN
    return trace.get_current_span(context)  # someone else's span
