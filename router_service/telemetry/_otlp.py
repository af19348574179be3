"""OTLP span encoding straight to protobuf bytes, for the gRPC span exporter.

The SDK's encoder (`opentelemetry.exporter.otlp.proto.common`) builds a Python protobuf object
for every span, attribute and value — ~75 µs per span on the benchmark machine, in the batch
processor's thread, which holds the GIL against the event loop while it does so (with tracing on
it was a fifth of the router's CPU). This module writes the same `ExportTraceServiceRequest`
bytes field by field instead, with the encoded attributes that repeat (method names, providers,
models, status codes) and the resource and scope blocks cached.

`encode_spans(spans)` returns bytes equal to the SDK's
`encode_spans(spans).SerializeToString()` (tests compare the two on spans with every kind of
value, events, links, status and trace state). `BytesOTLPSpanExporter` is the SDK's own
OTLP/gRPC span exporter — endpoint, headers, TLS, compression, timeouts and retries from the
same `OTEL_EXPORTER_OTLP_*` variables — with its translation step replaced: the bytes go to
the collector as they are (no request message is built, parsed or serialized).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, TraceState
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from router_service.telemetry._lean_trace import UNSET, LeanSpan

__all__ = ["BytesOTLPSpanExporter", "encode_spans"]

log = logging.getLogger("switchboard.telemetry")

_SMALL = [bytes([n]) for n in range(0x80)]
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
# By the member's id: an Enum's hash is a Python call (`Enum.__hash__`), one a span.
_KIND = {id(kind): b"\x30" + _SMALL[kind.value + 1] for kind in SpanKind}
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags masks
_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_KV_CACHE_MAX = 4096  # encoded key/value pairs kept (they repeat across spans)
# Longer encodings are not kept: a span name or value can be a client's string (the requested
# model), and 4096 of them a megabyte each held gigabytes; copying one out costs about as much.
_CACHED_FIELD_MAX = 1024
_CACHED_TYPES = (str, bool, int, float, tuple)
# Encoded key/value fields by tag, then by the value's exact type, then by (key, value).
_kv_caches: dict[bytes, dict[type, dict[tuple[str, Any], bytes]]] = {}
_status_cache: dict[tuple[int, str | None], bytes] = {}
_name_cache: dict[str, bytes] = {}
_block_cache: dict[int, tuple[object, bytes]] = {}  # id(resource | scope) -> (it, its bytes)


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    if n < 0x4000:  # a span's length, an event's: two bytes, without the loop
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message), present even when empty."""
    return tag + _varint(len(payload)) + payload


def _str_field(tag: bytes, text: str | None) -> bytes:
    """A proto3 string field: absent when empty."""
    return _len_field(tag, text.encode()) if text else b""


def _uint_field(tag: bytes, n: int | None) -> bytes:
    return tag + _varint(n) if n else b""


def _value(value: Any) -> bytes:
    """An `AnyValue` message (its fields, without an outer tag)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _len_field(b"\x0a", value.encode())
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise ValueError(f"{value} does not fit an int64")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _len_field(b"\x3a", value)
    # The SDK keeps sequences (nested too) of the above (a tuple, as ours keep them: no ABC
    # check, a Python-level `isinstance`, for those).
    if type(value) is tuple or isinstance(value, Sequence):
        return _len_field(b"\x2a", b"".join([_len_field(b"\x0a", _value(v)) for v in value]))
    if isinstance(value, Mapping):  # the SDK keeps mappings (a `KeyValueList`), keys as str
        pairs = [_len_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]
        return _len_field(b"\x32", b"".join(pairs))
    raise ValueError(f"invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _str_field(b"\x0a", key) + _len_field(b"\x12", _value(value))


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated `KeyValue` fields under `tag`. Each encoded field is cached: most attributes
    repeat from span to span (method, provider, model, status code)."""
    if not attributes:
        return b""
    # The SDK's BoundedAttributes is a Mapping whose items() runs in Python, one call per key;
    # the plain dict it wraps iterates in C. Any other Mapping is read as it is.
    items = attributes if type(attributes) is dict else getattr(attributes, "_dict", attributes)
    out = []
    by_type = _kv_caches.get(tag) or _kv_caches.setdefault(tag, {t: {} for t in _CACHED_TYPES})
    for item in items.items():
        # The (key, value) pair the dict's iterator made is the key, in a cache of the value's
        # type: True == 1 == 1.0 (hashed alike) are cached apart. No tuple of the pair's own.
        cache = by_type.get(type(item[1]))
        if cache is not None:
            try:
                field = cache.get(item)
            except TypeError:  # a tuple holding a mapping (the SDK keeps those): unhashable
                field = cache = None
            if field is not None:
                out.append(field)
                continue
        key, value = item
        try:
            field = _len_field(tag, _key_value(key, value))
        except ValueError as exc:  # the SDK's encoder logs and drops such an attribute too
            log.warning("span attribute %s not exported: %s", key, exc)
            continue
        if cache is not None and len(field) <= _CACHED_FIELD_MAX and _cacheable(value):
            if len(cache) >= _KV_CACHE_MAX:
                cache.clear()
            cache[item] = field
        out.append(field)
    return b"".join(out)


def _cacheable(value: Any) -> bool:
    """Whether an equal value is always encoded alike: not a float zero (-0.0 == 0.0, hashed
    alike, another double); a tuple only of strings ((True,) == (1,) == (1.0,); a traced
    request has two, its candidates and its finish reasons: ~15x a scalar to encode)."""
    if type(value) is tuple:
        return all(type(v) is str for v in value)
    return bool(value) or type(value) is not float


def _flags(parent: SpanContext | None) -> bytes:
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
    return _FIXED32(flags)


_LOCAL_PARENT = b"\x85\x01" + _flags(None)  # Span.flags (field 16, fixed32)
_REMOTE_PARENT = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)


def _events(events: Sequence[Event]) -> bytes:
    return b"".join(
        _len_field(
            b"\x5a",
            (b"\x09" + _FIXED64(e.timestamp) if e.timestamp else b"")
            + _str_field(b"\x12", e.name)
            + _attributes(b"\x1a", e.attributes)
            + _uint_field(b"\x20", e.dropped_attributes),
        )
        for e in events
    )


def _links(links: Sequence[Link]) -> bytes:
    return b"".join(
        _len_field(
            b"\x6a",
            b"\x0a\x10"
            + link.context.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + link.context.span_id.to_bytes(8, "big")
            + _attributes(b"\x22", link.attributes)
            + _uint_field(b"\x28", link.dropped_attributes)
            + b"\x35"
            + _flags(link.context),
        )
        for link in links
    )


def _status(status: Status) -> bytes:
    """The `Status` field, always present (as the SDK's encoder writes it); a handful of
    distinct values, cached."""
    key = (status.status_code.value, status.description)
    field = _status_cache.get(key)
    if field is None:
        body = _str_field(b"\x12", status.description) + _uint_field(b"\x18", key[0])
        field = _len_field(b"\x7a", body)
        if len(_status_cache) >= 256:
            _status_cache.clear()
        _status_cache[key] = field
    return field


_UNSET_STATUS = _status(UNSET)  # a lean span's status until one is set (most spans)


def _name(name: str) -> bytes:
    """The span's name field; names repeat (a route, a method, an operation and model), so their
    encodings are cached."""
    field = _name_cache.get(name)
    if field is None:
        field = _str_field(b"\x2a", name)
        if len(field) > _CACHED_FIELD_MAX:
            return field
        if len(_name_cache) >= _KV_CACHE_MAX:
            _name_cache.clear()
        _name_cache[name] = field
    return field


def _span(span: ReadableSpan | LeanSpan) -> bytes:
    """One `Span` message's fields in field-number order (`encode_spans` frames it)."""
    ctx: SpanContext | None
    attributes: Mapping[str, Any] | None
    events: Sequence[Event]
    links: Sequence[Link]
    if type(span) is LeanSpan:  # ours: its fields as they are, not copies made by properties
        ctx, attributes, events, links = span._context, span._attributes, span._events, span._links
    else:
        ctx = span.get_span_context()
        attributes, events, links = span.attributes, span.events, span.links
    assert ctx is not None  # an SDK span always has one
    # Contexts are tuples: unpacked and indexed rather than read by their properties (a
    # Python call each, ~14 a span).
    trace_id, span_id, _, _, state, _ = ctx
    parent = span.parent
    start, end = span.start_time, span.end_time
    status = span.status
    dropped = span.dropped_attributes, span.dropped_events, span.dropped_links
    return b"".join(
        (
            b"\x0a\x10",
            trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            span_id.to_bytes(8, "big"),
            # (A trace state's truth is its Python `__len__`; most spans have the default.)
            _trace_state(state) if state is not DEFAULT_TRACE_STATE and state else b"",
            b"\x22\x08" + parent[1].to_bytes(8, "big") if parent is not None else b"",
            _name(span.name),
            _KIND[id(span.kind)],
            b"\x39" + _FIXED64(start) if start else b"",
            b"\x41" + _FIXED64(end) if end else b"",
            _attributes(b"\x4a", attributes),
            _uint_field(b"\x50", dropped[0]) if dropped[0] else b"",
            _events(events) if events else b"",
            _uint_field(b"\x60", dropped[1]) if dropped[1] else b"",
            _links(links) if links else b"",
            _uint_field(b"\x70", dropped[2]) if dropped[2] else b"",
            _UNSET_STATUS if status is UNSET else _status(status),
            _REMOTE_PARENT if parent is not None and parent[2] else _LOCAL_PARENT,
        )
    )


def _trace_state(state: TraceState) -> bytes:
    return _str_field(b"\x1a", ",".join(f"{k}={v}" for k, v in state.items()))


def _cached_block(item: object, encode: Any) -> bytes:
    """A resource's or scope's encoded block, cached by identity (one or two per process)."""
    cached = _block_cache.get(id(item))
    if cached is not None and cached[0] is item:
        return cached[1]
    block: bytes = encode(item)
    if len(_block_cache) >= 64:
        _block_cache.clear()
    _block_cache[id(item)] = (item, block)
    return block


def _resource(resource: Resource) -> bytes:
    return _len_field(b"\x0a", _attributes(b"\x0a", resource.attributes))


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return _len_field(b"\x0a", b"")
    body = (
        _str_field(b"\x0a", scope.name)
        + _str_field(b"\x12", scope.version)
        + _attributes(b"\x1a", scope.attributes)
    )
    return _len_field(b"\x0a", body)


def encode_spans(spans: Iterable[ReadableSpan]) -> bytes:
    """An `ExportTraceServiceRequest`: spans grouped by resource, then instrumentation scope,
    in first-seen order (as the SDK's encoder groups them)."""
    # Resources by identity (a provider has one; hashing one is costly), scopes by value (a
    # Python `__hash__`): looked up only when a span's differ from the span's before (rarely).
    grouped: dict[int, tuple[Resource, dict[Any, tuple[Any, list[bytes]]]]] = {}
    last: tuple[object, object] = (None, None)
    encoded: list[bytes] = []
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        if resource is not last[0] or scope is not last[1]:
            last = resource, scope
            scopes = grouped.setdefault(id(resource), (resource, {}))[1]
            encoded = scopes.setdefault(scope or None, (scope or None, []))[1]
        body = _span(span)
        encoded += (b"\x12", _varint(len(body)), body)
    # Framed from the inside out by lengths, the bytes joined once (each span copied once more).
    out: list[bytes] = []
    for resource, scopes in grouped.values():
        resource_parts = [_cached_block(resource, _resource)]
        for scope, parts in scopes.values():
            parts.insert(0, _cached_block(scope, _scope))
            if scope is not None:
                parts.append(_str_field(b"\x1a", scope.schema_url))
            resource_parts += (b"\x12", _varint(sum(map(len, parts))), *parts)
        resource_parts.append(_str_field(b"\x1a", resource.schema_url))
        out += (b"\x0a", _varint(sum(map(len, resource_parts))), *resource_parts)
    return b"".join(out)


class _SerializedExport:
    """TraceService's `Export` for a request that is already bytes (grpc sends bytes as they are
    when a method has no serializer)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.Export = channel.unary_unary(
            _EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )


class BytesOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter (its endpoint, TLS, headers, compression, retries and
    reconnects from the `OTEL_*` variables) sending `encode_spans`' bytes as they are. Parsing
    them into the SDK's request message for grpc to serialize again cost more than encoding
    them (callgrind: ~60 % of the export thread's instructions)."""

    def _initialize_channel_and_stub(self) -> None:  # also called on reconnects
        # Unannotated in the SDK.
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        # The SDK types `_client` as None (and sets its own stub here).
        self._client = _SerializedExport(self._channel)  # type: ignore[assignment]

    # Bytes, not the SDK's request message: `_SerializedExport` sends them as they are.
    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        return encode_spans(data)
