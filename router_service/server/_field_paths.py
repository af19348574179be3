"""BadRequest field paths in the request's own protobuf terms.

An invalid request names its field by OpenAI's parameter path (`messages[1].role`, `metadata`,
`expires_after.seconds`): the edge answers it as OpenAI's `param`, and ErrorInfo carries it as
`openai_param`. google.rpc.BadRequest's `field` is a path in the request message instead (what a
Go, Java or Node caller built on the published protos walks): `params.messages[1].role`,
`metadata_json`, `expires_after_s`. This module turns the one into the other, against the
request the call being served took (set by the auth interceptor, which wraps every RouterService
and AdminService handler).

A path is resolved as far as the proto has fields for it: a segment that names a `*_json` string
field ends there (the rest is inside its JSON), as does one that names no field at all (the
nearest enclosing field is named); a oneof none of whose fields is set is named by the oneof's
name (`params.input`), as protovalidate names it; an indexed one (`content[0]`) by the list it
holds (`parts.parts[0]`); a key given in `extra_json` (`gemini_only.safetySettings`) names that
`extra_json`, and one of a Media call's body (`stream`, rerank's `query`) its `params_json`.
A param the request has no field for at all is named by no violation (ErrorInfo's `openai_param`
still says it).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from contextvars import ContextVar
from functools import cache

import orjson
from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from clients.switchboard.v1 import admin_service_pb2, router_service_pb2

__all__ = ["proto_field_path", "serving"]

_SERVICES = (
    router_service_pb2.DESCRIPTOR.services_by_name["RouterService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
)
# OpenAI's names that are no segment of the proto's (CreateRealtimeClientSecret's `expires_after`
# object is two flat fields there).
_ALIASES = {
    "expires_after.seconds": "expires_after_s",
    "expires_after.anchor": "expires_after_anchor",
}
_REQUEST_TYPES = frozenset(method.input_type for service in _SERVICES for method in service.methods)
_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")
# The JSON strings whose keys are merged into the body at its top, and whether one names a key
# only when the key is in it: ChatParams' and EmbeddingParams' extras hold what the typed fields
# do not (`background`, refused of a StartBackgroundResponse, is in none); MediaParams'
# `params_json` is the whole body (but its uploads), a key it lacks (rerank's `query`) too.
_EXTRAS = {"extra_json": True, "params_json": False}

# The request of the call served in this context, in a box its handler empties when the call
# ends: a task the call started (a background job) copies the context, not the request.
_REQUEST: ContextVar[list[Message] | None] = ContextVar("switchboard_request", default=None)


def serving(request: Message) -> list[Message]:
    """The call served in this context takes `request`; the box to `clear()` when it ends."""
    served = [request]
    _REQUEST.set(served)
    return served


def proto_field_path(param: str) -> str | None:
    """`param` (OpenAI's path) as a path in the request of the call served now; as it is
    outside one (no request type known: an in-process helper, a background job). None: the
    request has no field for it (ResumeResponse refused of OpenAI's `stream`), so no
    BadRequest violation names one a caller's descriptor cannot walk."""
    served = _REQUEST.get()
    if not served:
        return param
    return _resolved(served[0], param)


def _resolved(request: Message, param: str) -> str | None:
    # Not cached: a path may hold the caller's own words (`metadata.<key>`), and a refusal is
    # no hot path (~20 µs).
    segments = _SEGMENT.findall(_ALIASES.get(param, param))
    for prefix, message in _holders(request.DESCRIPTOR):
        path = _walk(message, segments)
        if path:
            return ".".join((*prefix, *path))
    key = segments[0][0] if segments else ""
    for prefix, message in _holders(request.DESCRIPTOR):
        for extra, if_given in _EXTRAS.items():  # a key of the JSON merged at the body's top
            if extra in message.fields_by_name and (
                not if_given or key in _keys(request, prefix, extra)
            ):
                return ".".join((*prefix, extra))
    return None


def _keys(request: Message, prefix: tuple[str, ...], field: str) -> Collection[str]:
    """The keys of the JSON object in `field` of the message at `prefix` in `request`."""
    holder = request
    for name in prefix:
        holder = getattr(holder, name)
    try:
        given = orjson.loads(getattr(holder, field) or "{}")
    except orjson.JSONDecodeError:
        return ()
    return given.keys() if isinstance(given, dict) else ()


@cache  # one per request type
def _holders(request: Descriptor) -> tuple[tuple[tuple[str, ...], Descriptor], ...]:
    """Where a path's first name may be: the request, then its message fields (ChatRequest's
    `params`, `routing`), and theirs only in a request it holds whole
    (StartBackgroundResponseRequest's `chat`: `chat.params`)."""
    found: list[tuple[tuple[str, ...], Descriptor]] = [((), request)]
    for prefix, message in found:
        if prefix and message not in _REQUEST_TYPES:
            continue
        for field in message.fields:
            if field.message_type is not None and not field.is_repeated:  # nor a map
                found.append(((*prefix, field.name), field.message_type))
    return tuple(found)


def _walk(message: Descriptor, segments: list[tuple[str, str]]) -> list[str]:
    path: list[str] = []
    for name, indices in segments:
        field = message.fields_by_name.get(name)
        if field is None and name in message.oneofs_by_name:
            if not indices:  # a oneof as a whole (none of its fields set): named as it is
                path.append(name)
                break
            field = _listed_in(message.oneofs_by_name[name], path)
        if field is None:
            field = message.fields_by_name.get(f"{name}_json")
            if field is not None:  # a JSON string: what follows is inside it
                path.append(field.name + (indices if _repeated(field) else ""))
            break
        path.append(field.name + (indices if _repeated(field) else ""))
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            break  # a scalar or a map: what follows is inside it
        message = field.message_type
    return path


def _listed_in(oneof: OneofDescriptor, path: list[str]) -> FieldDescriptor | None:
    """An indexed oneof (`content[0]`): the list its one message field holds (ChatMessage's
    `parts`, ContentParts' `parts`), that field's name appended to `path`."""
    for field in oneof.fields:
        inner = field.message_type
        if inner is not None and len(inner.fields) == 1 and _repeated(inner.fields[0]):
            path.append(field.name)
            listed: FieldDescriptor = inner.fields[0]
            return listed
    return None


def _repeated(field: FieldDescriptor) -> bool:
    entry = field.message_type is not None and field.message_type.GetOptions().map_entry
    return bool(field.is_repeated) and not entry
