"""`LeanTracerProvider` behaves as the SDK's provider where our code, the propagators and the
span processors can tell: sampling from the environment, parents and trace ids, attribute
values, status rules, events, exceptions, one end, current-span handling, flush and shutdown."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode, TraceState

from router_service.telemetry import setup
from router_service.telemetry._current import current_span
from router_service.telemetry._lean_trace import (
    LeanBatchSpanProcessor,
    LeanSpan,
    LeanTracerProvider,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def made() -> Iterator[tuple[LeanTracerProvider, InMemorySpanExporter]]:
    provider = LeanTracerProvider(resource=Resource.create({"service.name": "test"}))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_children_share_the_trace_and_point_at_their_parent(
    made: tuple[LeanTracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = made
    tracer = provider.get_tracer("switchboard", "1")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        assert trace.get_current_span() is parent
        child = tracer.start_span("child")
        child.end()
    assert trace.get_current_span() is not parent
    ended_child, ended_parent = exporter.get_finished_spans()
    assert ended_parent.parent is None and ended_parent.kind is SpanKind.SERVER
    assert ended_child.parent is not None
    assert ended_child.parent.span_id == ended_parent.context.span_id
    assert ended_child.context.trace_id == ended_parent.context.trace_id
    assert ended_child.instrumentation_scope is not None
    assert ended_child.instrumentation_scope.name == "switchboard"
    assert ended_child.resource.attributes["service.name"] == "test"
    assert ended_parent.start_time is not None and ended_child.start_time is not None
    assert ended_child.end_time is not None
    assert ended_parent.start_time <= ended_child.start_time <= ended_child.end_time


def test_a_remote_parent_from_traceparent_is_continued(
    made: tuple[LeanTracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = made
    parent = propagate.extract({"traceparent": TRACEPARENT})
    provider.get_tracer("t").start_span("server", context=parent).end()
    [span] = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and span.parent.is_remote
    carrier: dict[str, str] = {}
    # An ended span in a context, by its span context (all that `inject` reads of it).
    propagate.inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(span.context)))
    assert carrier["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")


def test_the_sampler_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = LeanTracerProvider()
    span = provider.get_tracer("t").start_span("dropped")
    assert isinstance(span, NonRecordingSpan) and not span.is_recording()
    assert not span.get_span_context().trace_flags.sampled
    assert span.get_span_context().is_valid  # the context still travels


_PARENTS = {
    "root": None,
    "remote sampled, with trace state": {"traceparent": TRACEPARENT, "tracestate": "v=1,w=2"},
    "remote not sampled": {"traceparent": TRACEPARENT[:-2] + "00", "tracestate": "v=3"},
    "remote, random trace id": {"traceparent": TRACEPARENT[:-2] + "03", "tracestate": "v=4"},
}


@pytest.mark.parametrize(
    "sampler",
    [ALWAYS_ON, DEFAULT_ON, ALWAYS_OFF, DEFAULT_OFF, ParentBasedTraceIdRatio(0.5)],
    ids=["always_on", "parentbased_always_on", "always_off", "parentbased_always_off", "ratio"],
)
@pytest.mark.parametrize("parent", list(_PARENTS))
def test_sampling_decides_as_the_sdk_provider(sampler: Sampler, parent: str) -> None:
    """Lean spans take the two common samplers' decision without calling them; every sampler,
    called or not, must give what the SDK's provider gives: flags (sampled, and the W3C level 2
    random-trace-id mark of a root or of its parent), trace state, recording, start attributes."""
    carrier = _PARENTS[parent]
    context = propagate.extract(carrier) if carrier is not None else None
    lean_provider, sdk_provider = LeanTracerProvider(), TracerProvider(sampler=sampler)
    lean_provider.sampler = sampler
    # The same root trace id on both sides (a ratio sampler decides by it), patched per instance.
    for ids in (lean_provider.ids, sdk_provider.id_generator):
        ids.generate_trace_id = lambda: 0x0AF7651916CD43DD8448EB211C80319C  # type: ignore[method-assign]
    made = []
    for provider in (lean_provider, sdk_provider):
        span = provider.get_tracer("t").start_span("s", context, attributes={"a": 1})
        ctx = span.get_span_context()
        # Both recording spans (LeanSpan, the SDK's) have `attributes`; the API's Span has not.
        attributes = dict(span.attributes) if span.is_recording() else {}  # type: ignore[attr-defined]
        made.append(
            (
                span.is_recording(),
                ctx.trace_flags,
                ctx.trace_state,
                ctx.is_valid,
                ctx.is_remote,
                type(ctx),
                attributes,
            )
        )
        span.end()
    lean, sdk = made
    assert lean == sdk
    if carrier is not None:  # the parent's trace state goes on, whatever was decided
        assert lean[2] == TraceState.from_header([carrier["tracestate"]])


class _RecordOnly(Sampler):
    """Records every span and samples none: spans a processor must not export."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "RecordOnly"


@pytest.mark.parametrize("sampler", [ALWAYS_ON, _RecordOnly()], ids=["sampled", "record-only"])
def test_the_batch_processor_exports_sampled_spans_lean_or_not(sampler: Sampler) -> None:
    """`LeanBatchSpanProcessor` reads a lean span's sampled flag from its context's tuple; an
    SDK span (the console exporter's provider) goes the SDK's way: the same spans exported."""
    exporter = InMemorySpanExporter()
    processor = LeanBatchSpanProcessor(exporter)
    lean, sdk = LeanTracerProvider(), TracerProvider(sampler=sampler)
    lean.sampler = sampler
    for provider in (lean, sdk):
        provider.add_span_processor(processor)
        span = provider.get_tracer("t").start_span(type(provider).__name__)
        assert span.is_recording()
        span.end()
    processor.force_flush()
    exported = sorted(span.name for span in exporter.get_finished_spans())
    assert exported == (["LeanTracerProvider", "TracerProvider"] if sampler is ALWAYS_ON else [])
    processor.shutdown()  # type: ignore[no-untyped-call]  # unannotated in the SDK


class _CountingParentBased(ParentBased):
    """A parent-based sampler that counts the decisions it is asked for."""

    asked = 0

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        type(self).asked += 1
        return super().should_sample(*args, **kwargs)


@pytest.mark.parametrize("delegate", [None, ALWAYS_ON], ids=["default", "records-them"])
def test_a_dropped_parents_child_is_dropped_without_asking_a_parent_based_sampler(
    delegate: Sampler | None,
) -> None:
    """What the parent-based samplers decide for a parent that was not sampled (drop) is taken
    without their calls; a sampler configured to decide otherwise is asked, and obeyed."""
    unsampled = propagate.extract({"traceparent": TRACEPARENT[:-2] + "00"})
    provider = LeanTracerProvider()
    sampler = _CountingParentBased(
        ALWAYS_ON, **({"remote_parent_not_sampled": delegate} if delegate else {})
    )
    provider.sampler = sampler
    _CountingParentBased.asked = 0
    span = provider.get_tracer("t").start_span("s", unsampled)
    ctx = span.get_span_context()
    assert ctx.trace_id == 0x0AF7651916CD43DD8448EB211C80319C and ctx.span_id != 0xB7AD6B7169203331
    if delegate is None:
        assert (span.is_recording(), ctx.trace_flags.sampled, _CountingParentBased.asked) == (
            False,
            False,
            0,
        )
    else:
        assert (span.is_recording(), ctx.trace_flags.sampled, _CountingParentBased.asked) == (
            True,
            True,
            1,
        )
    span.end()


def test_attribute_values_are_kept_as_the_sdk_keeps_them(
    made: tuple[LeanTracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    provider, exporter = made
    span = provider.get_tracer("t").start_span("s", attributes={"at.start": 1})
    span.set_attribute("list", ["a", "b"])
    span.set_attributes({"n": 2, "f": 0.5, "b": False, "empty": []})
    with caplog.at_level(logging.WARNING, logger="switchboard.telemetry"):
        span.set_attribute("bad", {"a": 1})
        span.set_attributes({"none": None, "mixed.types": [1, "x"], "bool.and.int": [True, 1]})
    span.end()
    span.set_attribute("after.end", 1)  # ignored: the span has ended
    [ended] = exporter.get_finished_spans()
    assert ended.attributes is not None
    assert dict(ended.attributes) == {
        "at.start": 1,
        "list": ("a", "b"),
        "n": 2,
        "f": 0.5,
        "b": False,
        "empty": (),
    }
    for dropped in ("bad", "none", "mixed.types", "bool.and.int"):
        assert dropped in caplog.text


def test_status_ok_is_final_and_only_errors_keep_a_description(
    made: tuple[LeanTracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = made
    tracer = provider.get_tracer("t")
    failed = tracer.start_span("failed")
    failed.set_status(StatusCode.ERROR, "boom")
    failed.end()
    ok = tracer.start_span("ok")
    ok.set_status(Status(StatusCode.OK))
    ok.set_status(StatusCode.ERROR, "too late")
    ok.end()
    unset = tracer.start_span("unset")
    unset.end()
    statuses = {s.name: s.status for s in exporter.get_finished_spans()}
    assert (statuses["failed"].status_code, statuses["failed"].description) == (
        StatusCode.ERROR,
        "boom",
    )
    assert statuses["ok"].status_code is StatusCode.OK
    assert statuses["unset"].status_code is StatusCode.UNSET


def test_events_exceptions_names_and_one_end(
    made: tuple[LeanTracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = made
    span = provider.get_tracer("t").start_span("first name")
    assert isinstance(span, LeanSpan)
    span.add_event("plan", {"candidates": ["a", "b"]}, timestamp=7)
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        span.record_exception(exc)
    span.update_name("GET /v1/models")
    span.end()
    span.end()  # a second end changes nothing and exports nothing
    [ended] = exporter.get_finished_spans()
    assert ended.name == "GET /v1/models" and not span.is_recording()
    plan, error = ended.events
    assert plan.attributes is not None and error.attributes is not None
    assert (plan.name, plan.timestamp, dict(plan.attributes)) == (
        "plan",
        7,
        {"candidates": ("a", "b")},
    )
    assert error.name == "exception"
    assert error.attributes["exception.type"] == "ValueError"
    assert "bad input" in str(error.attributes["exception.stacktrace"])


def test_an_exception_in_start_as_current_span_marks_the_span(
    made: tuple[LeanTracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = made
    with pytest.raises(RuntimeError), provider.get_tracer("t").start_as_current_span("s"):
        raise RuntimeError("failed")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_flush_and_shutdown_reach_the_processors() -> None:
    provider = LeanTracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert provider.force_flush()
    provider.shutdown()
    provider.get_tracer("t").start_span("after shutdown").end()
    assert exporter.get_finished_spans() == ()  # the exporter was shut down with the provider


@pytest.mark.parametrize(
    ("exporters", "lean"), [("otlp", True), ("console", False), ("otlp,console", False)]
)
def test_configured_tracing_uses_lean_spans_unless_the_console_prints_them(
    monkeypatch: pytest.MonkeyPatch, exporters: str, lean: bool
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", exporters)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9")
    provider = setup._tracer_provider(Resource.create({"service.name": "test"}))
    try:
        assert isinstance(provider, LeanTracerProvider) is lean
    finally:
        assert provider is not None
        provider.shutdown()


def test_with_tracing_off_no_tracer_is_loaded() -> None:
    # Neither the SDK's tracer nor ours (~0.3 MiB) in a process that traces nothing: the
    # default. A fresh interpreter, with no OTEL_* variable asking for traces.
    probe = (
        "import sys; from router_service.telemetry import configure_telemetry; "
        "configure_telemetry('switchboard-router'); "
        "print(*[m for m in ('opentelemetry.sdk.trace', "
        "'router_service.telemetry._lean_trace') if m in sys.modules])"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_the_current_span_is_found_as_the_api_finds_it(
    made: tuple[LeanTracerProvider, InMemorySpanExporter],
) -> None:
    """`current_span` knows our spans by type (no ABC check) and leaves others to the API."""
    provider, _ = made
    tracer = provider.get_tracer("probe")
    assert current_span() is trace.INVALID_SPAN
    with tracer.start_as_current_span("lean") as lean:
        assert type(lean) is LeanSpan and current_span() is lean
        remote = propagate.extract({"traceparent": TRACEPARENT})
        found = current_span(remote)
        assert type(found) is NonRecordingSpan and found is trace.get_current_span(remote)
    sdk = TracerProvider().get_tracer("probe")
    with sdk.start_as_current_span("sdk") as foreign:
        assert current_span() is foreign
    odd = trace.set_span_in_context("not a span")  # type: ignore[arg-type]  # as the API takes it
    assert current_span(odd) is trace.INVALID_SPAN
