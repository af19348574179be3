"""Chat messages (and stream deltas): roles, content parts, tool calls.

Shared by requests (a caller's messages) and responses (a choice's message, a chunk's delta), so a
message looks the same in both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clients.codec._json import (
    assign,
    at,
    at_index,
    dump_extra,
    dump_json,
    enum_name,
    expect_int32,
    expect_list,
    expect_object,
    expect_str,
    fail_type,
    has,
    invalid_value,
    load_json,
    merge_extra,
    missing,
    split_known,
)
from clients.switchboard.v1 import chat_pb2

_ROLES: dict[str, chat_pb2.Role.ValueType] = {
    "system": chat_pb2.ROLE_SYSTEM,
    "developer": chat_pb2.ROLE_DEVELOPER,
    "user": chat_pb2.ROLE_USER,
    "assistant": chat_pb2.ROLE_ASSISTANT,
    "tool": chat_pb2.ROLE_TOOL,
    "function": chat_pb2.ROLE_FUNCTION,
}
_ROLE_NAMES = {value: name for name, value in _ROLES.items()}
_DETAILS: dict[str, chat_pb2.ImageDetail.ValueType] = {
    "auto": chat_pb2.IMAGE_DETAIL_AUTO,
    "low": chat_pb2.IMAGE_DETAIL_LOW,
    "high": chat_pb2.IMAGE_DETAIL_HIGH,
}
_DETAIL_NAMES = {value: name for name, value in _DETAILS.items()}

_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "function_call"}
)
_OPTIONAL_STRINGS = ("name", "tool_call_id", "refusal")
_TOOL_CALL_KEYS = frozenset({"index", "id", "type", "function"})


def message_from_openai(
    value: Any, path: str, *, role_required: bool, into: chat_pb2.ChatMessage | None = None
) -> chat_pb2.ChatMessage:
    """A request message (``role_required``) or a response message / stream delta; read
    ``into`` an empty message in place (an answer's, a chunk's: no copy) when given."""
    typed, extra = split_known(expect_object(value, path), _MESSAGE_KEYS)
    msg = chat_pb2.ChatMessage() if into is None else into
    if "role" in typed:
        msg.role = _role_from_openai(typed["role"], at(path, "role"))
    elif role_required:
        missing(at(path, "role"))
    if "content" in typed:
        _content_from_openai(msg, typed["content"], at(path, "content"))
    for key in _OPTIONAL_STRINGS:
        if key in typed:
            setattr(msg, key, expect_str(typed[key], at(path, key)))
    if "tool_calls" in typed:
        calls = expect_list(typed["tool_calls"], at(path, "tool_calls"))
        if not calls:
            extra["tool_calls"] = calls
        for i, call in enumerate(calls):
            msg.tool_calls.append(tool_call_from_openai(call, at_index(at(path, "tool_calls"), i)))
    if "function_call" in typed:
        function = function_call_from_openai(typed["function_call"], at(path, "function_call"))
        if function is None:
            extra["function_call"] = typed["function_call"]
        else:
            assign(msg.function_call, function)
    msg.extra_json = dump_extra(extra, path)
    return msg


def message_to_openai(
    msg: chat_pb2.ChatMessage, path: str, *, role_required: bool
) -> dict[str, Any]:
    """A request message (``role_required``: ROLE_UNSPECIFIED is refused, as a missing `role`
    is over HTTP) or a response message / stream delta."""
    out: dict[str, Any] = {}
    if msg.role:
        role = _ROLE_NAMES.get(msg.role)  # the path is written only for an unknown one
        out["role"] = enum_name(_ROLE_NAMES, msg.role, at(path, "role")) if role is None else role
    elif role_required:
        missing(at(path, "role"))
    content = msg.WhichOneof("content")
    if content == "text":
        out["content"] = msg.text
    elif content == "parts":
        parts = msg.parts.parts
        out["content"] = [
            part_to_openai(p, at_index(at(path, "content"), i)) for i, p in enumerate(parts)
        ]
    for key in _OPTIONAL_STRINGS:
        if has(msg, key):
            out[key] = getattr(msg, key)
    if msg.tool_calls:
        out["tool_calls"] = [
            tool_call_to_openai(c, at_index(at(path, "tool_calls"), i))
            for i, c in enumerate(msg.tool_calls)
        ]
    if msg.HasField("function_call"):
        out["function_call"] = function_call_to_openai(msg.function_call)
    # A message's extras are mostly none (a chunk's delta): no call then.
    return merge_extra(out, msg.extra_json, path) if msg.extra_json else out


def _role_from_openai(value: Any, path: str) -> chat_pb2.Role.ValueType:
    role = _ROLES.get(expect_str(value, path))
    if role is None:
        invalid_value(path, value, _ROLES)
    return role


def _content_from_openai(msg: chat_pb2.ChatMessage, value: Any, path: str) -> None:
    if isinstance(value, str):
        msg.text = value
    elif isinstance(value, list):
        msg.parts.SetInParent()
        for i, part in enumerate(value):
            msg.parts.parts.append(part_from_openai(part, at_index(path, i)))
    else:
        fail_type(path, "a string or an array of content parts", value)


# --- content parts -------------------------------------------------------------------------------


def part_from_openai(value: Any, path: str) -> chat_pb2.ContentPart:
    """A typed part when the part round-trips exactly through its message, else ``raw_json``.

    Wrong types of modelled leaves (``text`` not a string) are errors; shapes we do not model
    (an unknown ``type``, a string ``image_url``, an unknown ``detail``) are kept raw.
    """
    obj = expect_object(value, path)
    if "type" not in obj:
        missing(at(path, "type"))
    kind = expect_str(obj["type"], at(path, "type"))
    parse = _PART_PARSERS.get(kind)
    part = parse(obj, path) if parse else None
    if part is None or part_to_openai(part, path) != obj:
        return chat_pb2.ContentPart(raw_json=dump_json(obj, path))
    return part


def part_to_openai(part: chat_pb2.ContentPart, path: str) -> dict[str, Any]:
    kind = part.WhichOneof("part")
    out: dict[str, Any]
    if kind == "raw_json":
        raw = load_json(part.raw_json, at(path, "raw_json"))
        if not isinstance(raw, dict):
            fail_type(at(path, "raw_json"), "a JSON object", raw)
        return raw
    if kind == "text":
        out = {"type": "text", "text": part.text.text}
    elif kind == "image_url":
        image: dict[str, Any] = {"url": part.image_url.url}
        if part.image_url.detail:
            detail = part.image_url.detail
            image["detail"] = enum_name(_DETAIL_NAMES, detail, at(path, "image_url.detail"))
        out = {"type": "image_url", "image_url": image}
    elif kind == "input_audio":
        audio = part.input_audio
        out = {"type": "input_audio", "input_audio": {"data": audio.data, "format": audio.format}}
    elif kind == "file":
        out = {"type": "file", "file": _file_to_openai(part.file)}
    else:
        fail_type(path, "a content part with one of its kinds set", None)
    return merge_extra(out, part.extra_json, path)


def _typed_part(obj: dict[str, Any], key: str, path: str) -> tuple[dict[str, Any], str] | None:
    """The inner object of a ``{"type": key, key: {...}}`` part and the part's ``extra_json``."""
    typed, extra = split_known(obj, frozenset({"type", key}))
    inner = typed.get(key)
    if not isinstance(inner, dict):
        return None
    return inner, dump_extra(extra, path)


def _text_part(obj: dict[str, Any], path: str) -> chat_pb2.ContentPart | None:
    typed, extra = split_known(obj, frozenset({"type", "text"}))
    if "text" not in typed:
        return None
    text = chat_pb2.TextPart(text=expect_str(typed["text"], at(path, "text")))
    return chat_pb2.ContentPart(text=text, extra_json=dump_extra(extra, path))


def _image_part(obj: dict[str, Any], path: str) -> chat_pb2.ContentPart | None:
    found = _typed_part(obj, "image_url", path)
    if found is None:
        return None
    inner, extra_json = found
    image = chat_pb2.ImageUrlPart()
    if "url" in inner:
        image.url = expect_str(inner["url"], at(path, "image_url.url"))
    if "detail" in inner:
        detail = _DETAILS.get(expect_str(inner["detail"], at(path, "image_url.detail")))
        if detail is None:
            return None
        image.detail = detail
    return chat_pb2.ContentPart(image_url=image, extra_json=extra_json)


def _audio_part(obj: dict[str, Any], path: str) -> chat_pb2.ContentPart | None:
    found = _typed_part(obj, "input_audio", path)
    if found is None:
        return None
    inner, extra_json = found
    audio = chat_pb2.InputAudioPart()
    for key in ("data", "format"):
        if key in inner:
            setattr(audio, key, expect_str(inner[key], at(path, f"input_audio.{key}")))
    return chat_pb2.ContentPart(input_audio=audio, extra_json=extra_json)


def _file_part(obj: dict[str, Any], path: str) -> chat_pb2.ContentPart | None:
    found = _typed_part(obj, "file", path)
    if found is None:
        return None
    inner, extra_json = found
    file = chat_pb2.FilePart()
    for key in ("file_id", "file_data", "filename"):
        if inner.get(key) is not None:
            setattr(file, key, expect_str(inner[key], at(path, f"file.{key}")))
    return chat_pb2.ContentPart(file=file, extra_json=extra_json)


def _file_to_openai(file: chat_pb2.FilePart) -> dict[str, Any]:
    keys = ("file_id", "file_data", "filename")
    return {key: getattr(file, key) for key in keys if has(file, key)}


_PART_PARSERS: dict[str, Callable[[dict[str, Any], str], chat_pb2.ContentPart | None]] = {
    "text": _text_part,
    "image_url": _image_part,
    "input_audio": _audio_part,
    "file": _file_part,
}


# --- tool calls ----------------------------------------------------------------------------------


def tool_call_from_openai(value: Any, path: str) -> chat_pb2.ToolCall:
    """A tool call; in a stream delta most keys are absent and ``index`` is set."""
    typed, extra = split_known(expect_object(value, path), _TOOL_CALL_KEYS)
    call = chat_pb2.ToolCall()
    if "index" in typed:
        call.index = expect_int32(typed["index"], at(path, "index"))
    for key in ("id", "type"):
        if key in typed:
            text = expect_str(typed[key], at(path, key))
            if text:
                setattr(call, key, text)
            else:
                extra[key] = text
    if "function" in typed:
        function = function_call_from_openai(typed["function"], at(path, "function"))
        if function is None:
            extra["function"] = typed["function"]
        else:
            assign(call.function, function)
    call.extra_json = dump_extra(extra, path)
    return call


def tool_call_to_openai(call: chat_pb2.ToolCall, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if call.HasField("index"):
        out["index"] = call.index
    if call.id:
        out["id"] = call.id
    if call.type:
        out["type"] = call.type
    if call.HasField("function"):
        out["function"] = function_call_to_openai(call.function)
    return merge_extra(out, call.extra_json, path)


def function_call_from_openai(value: Any, path: str) -> chat_pb2.FunctionCall | None:
    """The ``function`` of a tool call; ``None`` when its shape would not round-trip.

    ``FunctionCall`` has no presence and no extras; the shapes it reproduces are the ones OpenAI
    sends: both keys, or (in stream deltas) ``arguments`` alone.
    """
    obj = expect_object(value, path)
    function = chat_pb2.FunctionCall()
    for key in ("name", "arguments"):
        if obj.get(key) is not None:
            setattr(function, key, expect_str(obj[key], at(path, key)))
    return function if function_call_to_openai(function) == obj else None


def function_call_to_openai(function: chat_pb2.FunctionCall) -> dict[str, Any]:
    if function.name:
        return {"name": function.name, "arguments": function.arguments}
    return {"arguments": function.arguments} if function.arguments else {}
