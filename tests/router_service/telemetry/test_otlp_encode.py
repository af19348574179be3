"""`encode_spans` writes the bytes the SDK's OTLP encoder writes, for every shape of span the
SDK can hand an exporter: each attribute type, events, links, status, trace state, remote and
local parents, several resources and scopes, attributes the encoder must drop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from router_service.telemetry import _otlp
from router_service.telemetry._lean_trace import LeanTracerProvider
from router_service.telemetry._otlp import BytesOTLPSpanExporter, encode_spans


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


Tracing = Callable[[Resource], tuple[Any, _Keep]]


@pytest.fixture(params=["sdk", "lean"])
def tracing(request: pytest.FixtureRequest) -> Iterator[Tracing]:
    """Spans of the SDK's provider, and of ours (what Switchboard makes), to encode."""
    providers: list[Any] = []

    def make(resource: Resource) -> tuple[Any, _Keep]:
        kept = _Keep()
        provider = (TracerProvider if request.param == "sdk" else LeanTracerProvider)(
            resource=resource
        )
        provider.add_span_processor(SimpleSpanProcessor(kept))
        providers.append(provider)
        return provider, kept

    yield make
    for provider in providers:
        provider.shutdown()


def _same_as_sdk(spans: list[ReadableSpan]) -> bytes:
    ours = encode_spans(spans)
    assert ours == sdk_encode(spans).SerializeToString()
    return ours


def test_every_attribute_type_and_span_part_encodes_as_the_sdk_does(tracing: Tracing) -> None:
    provider, kept = tracing(Resource.create({"service.name": "switchboard-router", "n": 3}))
    tracer = provider.get_tracer("switchboard", "1.2.3", schema_url="https://example/schema")
    values = {
        "text": "héllo ✓",
        "empty": "",
        "yes": True,
        "no": False,
        "zero": 0,
        "int": 300,
        "negative": -7,
        "int64.max": (1 << 63) - 1,
        "int64.min": -(1 << 63),
        "float": 1.5,
        "float.negative": -0.25,
        "strings": ["a", "b"],
        "ints": [1, -2, 3],
        "bools": [True, False],
        "floats": [0.5, 2.0],
        "long": "x" * 300,  # a length that needs a two-byte varint
    }
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=values) as root:
        root.add_event("plan", {"candidates": 2, "order": ["a/x", "b/y"]}, timestamp=123)
        root.add_event("bare")
        child = tracer.start_span(
            "chat model-a",
            kind=SpanKind.CLIENT,
            links=[Link(root.get_span_context(), {"why": "retry"}), Link(root.get_span_context())],
        )
        child.set_status(Status(StatusCode.ERROR, "RATE_LIMITED: 429 from upstream"))
        child.end()
        root.set_status(Status(StatusCode.OK))
    for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
        tracer.start_span(f"kind {kind.name}", kind=kind).end()
    assert len(kept.spans) == 5
    parsed = ExportTraceServiceRequest.FromString(_same_as_sdk(kept.spans))
    [root_span] = [s for s in parsed.resource_spans[0].scope_spans[0].spans if s.name == "root"]
    assert {a.key for a in root_span.attributes} == set(values)


def test_remote_parent_and_trace_state_encode_as_the_sdk_does(tracing: Tracing) -> None:
    provider, kept = tracing(Resource.create({"service.name": "switchboard-edge"}))
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    parent = set_span_in_context(NonRecordingSpan(remote), Context())
    tracer = provider.get_tracer("switchboard")
    with tracer.start_as_current_span("from a caller", context=parent, kind=SpanKind.SERVER):
        tracer.start_span("local child").end()
    _same_as_sdk(kept.spans)


def test_spans_of_several_resources_and_scopes_group_as_the_sdk_groups_them(
    tracing: Tracing,
) -> None:
    router, kept = tracing(Resource.create({"service.name": "router"}))
    edge, edge_kept = tracing(Resource.create({"service.name": "edge"}))
    for name in ("a", "b"):
        router.get_tracer("first").start_span(f"first {name}").end()
        router.get_tracer("second", "2").start_span(f"second {name}").end()
        edge.get_tracer("first").start_span(f"edge {name}").end()
        router.get_tracer("first").start_span(f"first again {name}").end()  # a new Tracer
    spans = kept.spans + edge_kept.spans
    parsed = ExportTraceServiceRequest.FromString(_same_as_sdk(spans))
    assert [len(r.scope_spans) for r in parsed.resource_spans] == [2, 1]


def test_cached_encodings_stay_right_past_the_cache_limit(
    tracing: Tracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_otlp, "_KV_CACHE_MAX", 8)
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    tracer = provider.get_tracer("switchboard")
    for i in range(40):  # repeated and new values, the cache emptied several times
        tracer.start_span("s", attributes={"i": i % 12, "same": "x", "f": float(i % 3)}).end()
    _same_as_sdk(kept.spans)
    assert all(len(c) <= 8 for by_type in _otlp._kv_caches.values() for c in by_type.values())


def test_sequences_equal_in_python_but_not_in_type_encode_apart(tracing: Tracing) -> None:
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    tracer = provider.get_tracer("switchboard")
    for value in ([1], [True], [1.0], [1], [True]):  # (True,) == (1,) == (1.0,) in Python
        tracer.start_span("s", attributes={"v": value}).end()
    parsed = ExportTraceServiceRequest.FromString(_same_as_sdk(kept.spans))
    spans = parsed.resource_spans[0].scope_spans[0].spans
    kinds = [s.attributes[0].value.array_value.values[0].WhichOneof("value") for s in spans]
    assert kinds == ["int_value", "bool_value", "double_value", "int_value", "bool_value"]


def test_negative_zero_encodes_apart_from_zero(tracing: Tracing) -> None:
    """-0.0 == 0.0 in Python (and hashes alike), but its double is another: a cached 0.0
    (or (0.0,)) was sent for a later -0.0."""
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    tracer = provider.get_tracer("switchboard")
    for value in (0.0, -0.0, [0.0], [-0.0]):
        tracer.start_span("s", attributes={"v": value}).end()
    _same_as_sdk(kept.spans)


def test_a_value_outside_int64_is_dropped_with_a_warning_as_the_sdk_drops_it(
    tracing: Tracing, caplog: pytest.LogCaptureFixture
) -> None:
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    provider.get_tracer("t").start_span("s", attributes={"big": 1 << 64, "ok": 1}).end()
    with caplog.at_level(logging.WARNING, logger="switchboard.telemetry"):
        parsed = ExportTraceServiceRequest.FromString(_same_as_sdk(kept.spans))
    [span] = parsed.resource_spans[0].scope_spans[0].spans
    assert [a.key for a in span.attributes] == ["ok"]
    assert "big" in caplog.text


def test_the_exporter_sends_the_encoded_request(tracing: Tracing) -> None:
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    provider.get_tracer("t").start_span("s", attributes={"k": "v"}).end()
    exporter = BytesOTLPSpanExporter(endpoint="http://127.0.0.1:9", insecure=True)
    try:
        request = exporter._translate_data(kept.spans)
    finally:
        exporter.shutdown()
    assert request == sdk_encode(kept.spans).SerializeToString()


def test_spans_of_one_scope_hash_it_once_not_once_a_span(
    tracing: Tracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope's hash is a Python call; a batch's spans almost always share their tracer's
    scope, looked up again only when a span's resource or scope is another than the last's."""
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    tracer = provider.get_tracer("switchboard")
    for i in range(20):
        tracer.start_span(f"s{i}").end()
    hashed: list[InstrumentationScope] = []
    plain_hash = InstrumentationScope.__hash__

    def counting_hash(scope: InstrumentationScope) -> int:
        hashed.append(scope)
        return plain_hash(scope)

    monkeypatch.setattr(InstrumentationScope, "__hash__", counting_hash)
    encode_spans(kept.spans)
    assert len(hashed) == 1


def test_a_sequence_holding_a_mapping_encodes_as_the_sdk_does(tracing: Tracing) -> None:
    """The SDK keeps a list of mappings as a tuple of dicts: unhashable, so looking it up in
    the attribute cache raised TypeError and the whole batch was lost."""
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    tracer = provider.get_tracer("t")
    for _ in range(2):
        tracer.start_span("s", attributes={"tools": [{"name": "a"}], "ok": ("x",)}).end()
    _same_as_sdk(kept.spans)


def test_mapping_values_encode_as_key_value_lists_as_the_sdk_encodes_them(
    tracing: Tracing,
) -> None:
    """The SDK keeps a mapping value and sends it as a `kvlist_value`; it was dropped."""
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    value = {"a": 1, "b": ["x", {"c": True}], "none": None, "empty": {}}
    provider.get_tracer("t").start_span("s", attributes={"m": value, "e": {}}).end()
    _same_as_sdk(kept.spans)


def test_long_values_are_encoded_but_not_kept_in_the_caches(
    tracing: Tracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requested model is the client's string (span name and attribute): 4096 cached
    megabyte-long ones, each kept with its encoding, held gigabytes."""
    monkeypatch.setattr(_otlp, "_kv_caches", {})
    monkeypatch.setattr(_otlp, "_name_cache", {})
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    model = "m" * 100_000
    provider.get_tracer("t").start_span(f"chat {model}", attributes={"model": model}).end()
    _same_as_sdk(kept.spans)
    fields = [
        f for by_type in _otlp._kv_caches.values() for c in by_type.values() for f in c.values()
    ]
    assert all(len(f) <= _otlp._CACHED_FIELD_MAX for f in [*fields, *_otlp._name_cache.values()])


@pytest.mark.parametrize("length", [127, 128, 16_250, 16_383, 16_384, 2_097_152])
def test_lengths_either_side_of_each_varint_size_encode_as_the_sdk_does(
    tracing: Tracing, length: int
) -> None:
    """Lengths of one, two and three varint bytes: the attribute's, its key/value's and the
    span's (a value of 16,250 characters makes a span just over 16,383 bytes)."""
    provider, kept = tracing(Resource.create({"service.name": "router"}))
    provider.get_tracer("t").start_span("chat", attributes={"text": "x" * length}).end()
    _same_as_sdk(kept.spans)
