"""`LeanTracerProvider`: OpenTelemetry spans without the SDK's per-span machinery.

Counted with callgrind, the SDK's span costs ~129 k instructions to start and end before any
attribute, and ~9 k per attribute (each value validated and copied into a locked
`BoundedAttributes`; a `ReadableSpan` copy made at the end) — with six spans a request, more than
the rest of tracing together. These spans implement the same OpenTelemetry API (our code, the
propagators and `trace.use_span` see no difference) with plain slots and a dict, and hand
themselves to the SDK's span processors at the end, looking like the `ReadableSpan` those expect
(the batch processor, the in-memory exporter of tests, our OTLP encoder).

What they keep from the SDK: the sampler (`OTEL_TRACES_SAMPLER`, via the SDK's provider), the id
generator, the resource, the processors (`on_end` only: `on_start` is a no-op in the SDK's batch
and simple processors, the only ones used). What they leave out: span limits (our code sets a
bounded set of attributes). Values are kept as the SDK keeps them: scalars, and sequences of one
scalar type as tuples; anything else is dropped with a warning.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBased,
    Sampler,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util.types import Attributes, AttributeValue

from router_service.telemetry._current import current_span, known_span_type
from router_service.telemetry._logging import REDACTOR

__all__ = ["UNSET", "LeanBatchSpanProcessor", "LeanSpan", "LeanTracer", "LeanTracerProvider"]

log = logging.getLogger("switchboard.telemetry")
# Trace flags by (sampled, random trace id): W3C Trace Context level 2 marks a trace id that
# is random (as the SDK's generator makes them); a child inherits the mark from its parent.
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (TraceFlags.RANDOM_TRACE_ID if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}
_SCALARS = (str, bool, int, float)
_new_context = tuple.__new__
_TRACE_ID_END, _SPAN_ID_END = 1 << 128, 1 << 64
_SAMPLED = int(TraceFlags.SAMPLED)
UNSET = Status(StatusCode.UNSET)  # a span's status until one is set (its encoding is cached)


def _clean(key: str, value: Any) -> AttributeValue | None:
    """The value as the SDK would keep it: a scalar, or a sequence of one scalar type (as a
    tuple); anything else is dropped with a warning."""
    if isinstance(value, _SCALARS):
        return value
    # A list or tuple without the ABC's `isinstance` (a Python-level check): the plan's
    # candidates, the finish reasons, on every traced request.
    if type(value) in (list, tuple) or (
        isinstance(value, Sequence) and not isinstance(value, bytes | bytearray)
    ):
        kinds = {type(v) for v in value}
        if len(kinds) <= 1 and kinds <= set(_SCALARS):
            return tuple(value)
    log.warning("span attribute %s dropped: %r is not a valid attribute value", key, value)
    return None


class LeanSpan(trace_api.Span):
    """A recording span: the OpenTelemetry API for our code, a `ReadableSpan` for processors."""

    __slots__ = (
        "_attributes",
        "_context",
        "_events",
        "_links",
        "_processors",
        "end_time",
        "instrumentation_scope",
        "kind",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )
    dropped_attributes = dropped_events = dropped_links = 0

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        provider: LeanTracerProvider,
        scope: InstrumentationScope,
        start_time: int | None,
        links: Sequence[Link],
    ) -> None:
        self.name = name
        self._context = context
        self.parent = parent
        self.kind = kind
        self.resource = provider.resource
        self.instrumentation_scope = scope
        self._processors = provider.processors
        self._attributes: dict[str, AttributeValue] = {}
        self._events: list[Event] = []
        self._links = tuple(links)
        self.status = UNSET
        self.start_time = start_time or time.time_ns()
        self.end_time: int | None = None

    # -- what processors and exporters read (ReadableSpan's properties) --------------------------

    @property
    def context(self) -> SpanContext:
        return self._context

    @property
    def attributes(self) -> Mapping[str, AttributeValue]:
        return MappingProxyType(self._attributes)

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events)

    @property
    def links(self) -> Sequence[Link]:
        return self._links

    # -- the OpenTelemetry API -------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is None and (cleaned := _clean(key, value)) is not None:
            self._attributes[key] = cleaned

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.end_time is not None:
            return
        for key, value in attributes.items():
            if type(value) in _SCALARS:  # the common case, without a call
                self._attributes[key] = value
            elif (cleaned := _clean(key, value)) is not None:
                self._attributes[key] = cleaned

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self.end_time is not None:
            return
        cleaned = {}
        for key, value in (attributes or {}).items():
            if type(value) in _SCALARS:  # the common case, without a call
                cleaned[key] = value
            elif (kept := _clean(key, value)) is not None:
                cleaned[key] = kept
        self._events.append(Event(name, cleaned, timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self.end_time is None and context.is_valid:
            self._links += (Link(context, attributes),)

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return  # OK is final, as in the SDK
        if isinstance(status, Status):
            self.status = status
        elif status is not StatusCode.UNSET:
            self.status = Status(status, description if status is StatusCode.ERROR else None)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # Redacted as the log's lines are (an exception's words may quote a key, a URL's token).
        details = {
            "exception.type": type(exception).__qualname__,
            "exception.message": REDACTOR(str(exception)),
            "exception.stacktrace": REDACTOR("".join(traceback.format_exception(exception))),
            "exception.escaped": str(escaped),
            **(attributes or {}),
        }
        self.add_event("exception", details, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return  # ended once only; the SDK logs a warning here
        self.end_time = end_time or time.time_ns()
        for processor in self._processors:
            processor.on_end(self)  # type: ignore[arg-type]  # a ReadableSpan by its properties

    def __repr__(self) -> str:
        return f"LeanSpan({self.name!r}, {self._context.span_id:016x})"


class LeanTracer(trace_api.Tracer):
    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._scope = scope

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        provider = self._provider
        found = current_span(context).get_span_context()
        # A `SpanContext` is a tuple: its fields read by unpacking, not by its six properties
        # (each a Python call; with the encoder's and the processor's, ~100 a traced request).
        parent_id, _, _, parent_flags, parent_state, valid = found
        parent = found if valid else None
        if parent is not None:
            trace_id, random = parent_id, bool(parent_flags & TraceFlags.RANDOM_TRACE_ID)
        else:
            trace_id, random = provider.ids.generate_trace_id(), provider.random_trace_ids
        parent_sampled = parent is None or bool(parent_flags & TraceFlags.SAMPLED)
        sampler = provider._sampler  # the attribute: no property call per span
        if not parent_sampled and provider.drops_unsampled:
            # A parent-based sampler drops a child of a dropped span: what it decides here,
            # without its calls (a request sampled out at its root pays this on every span).
            dropped = SpanContext(
                trace_id,
                provider.ids.generate_span_id(),
                False,
                _FLAGS[False, random],
                parent_state,
            )
            return trace_api.NonRecordingSpan(dropped)
        if sampler is ALWAYS_ON or (sampler is DEFAULT_ON and parent_sampled):
            # What these two samplers decide here, without their calls: record and sample,
            # keep the parent's trace state, pass the start attributes on.
            flags, state, start = _FLAGS[True, random], parent and parent_state, attributes
        else:
            sampled = sampler.should_sample(context, trace_id, name, kind, attributes, links)
            # `Decision`'s methods are unannotated in the SDK.
            flags = _FLAGS[sampled.decision.is_sampled(), random]  # type: ignore[no-untyped-call]
            state, start = sampled.trace_state, sampled.attributes
            if not sampled.decision.is_recording():  # type: ignore[no-untyped-call]  # the same
                span_context = SpanContext(
                    trace_id, provider.ids.generate_span_id(), False, flags, state
                )
                return trace_api.NonRecordingSpan(span_context)
        # The tuple made here, not by `SpanContext.__new__` (a Python call): the same fields.
        span_id = provider.ids.generate_span_id()
        valid = 0 < trace_id < _TRACE_ID_END and 0 < span_id < _SPAN_ID_END
        state = DEFAULT_TRACE_STATE if state is None else state
        span_context = _new_context(SpanContext, (trace_id, span_id, False, flags, state, valid))
        span = LeanSpan(
            name, span_context, parent, kind, provider, self._scope, start_time, links or ()
        )
        if start:  # the start attributes, as the sampler passed them on (SDK too)
            span.set_attributes(start)
        return span

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # contextlib's manager, not the API's
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace_api.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class LeanBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch span processor, a lean span's sampled flag read from its context's
    tuple (the SDK's `on_end` reads three properties, a Python call each, per span)."""

    def on_end(self, span: ReadableSpan) -> None:
        # (Not `isinstance`: an ABC's, a Python-level check. LeanSpan is a ReadableSpan by its
        # properties only, which mypy does not know.)
        if type(span) is not LeanSpan:  # type: ignore[comparison-overlap]
            super().on_end(span)
        elif span._context[3] & _SAMPLED:
            self._batch_processor.emit(span)


class LeanTracerProvider(trace_api.TracerProvider):
    """Lean spans, with the sampler, id generator and resource of an SDK provider built from
    the same environment (`OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES` …) and the SDK's
    span processors."""

    def __init__(self, resource: Resource | None = None) -> None:
        # Only read from (its env-configured parts), so no exit hook of its own: the process
        # flushes this provider (`shutdown_telemetry`).
        sdk = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.resource = sdk.resource
        self.sampler = sdk.sampler
        self.ids = sdk.id_generator
        self.random_trace_ids = self.ids.is_trace_id_random()
        self.processors: list[SpanProcessor] = []

    @property
    def sampler(self) -> Sampler:
        return self._sampler

    @sampler.setter
    def sampler(self, sampler: Sampler) -> None:
        self._sampler = sampler
        # The `parentbased_*` samplers (the SDK's default among them) with their default
        # delegates for a parent that was not sampled: they drop its children.
        self.drops_unsampled = isinstance(sampler, ParentBased) and all(
            getattr(sampler, name, None) is ALWAYS_OFF
            for name in ("_remote_parent_not_sampled", "_local_parent_not_sampled")
        )

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self.processors.append(processor)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> LeanTracer:
        scope = InstrumentationScope(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        return LeanTracer(self, scope)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()


known_span_type(LeanSpan)
