"""Ollama chat messages → OpenAI chat messages.

A message is `{role, content, images?, thinking?, tool_calls?, tool_name?}`: `images` are
base64 images (no MIME type: it is read from the image's first bytes) and become `image_url`
parts with a data URL; an assistant's `tool_calls` carry `function.arguments` as an object
(OpenAI's are a JSON string), and no id unless the client kept the one an answer gave; a
`tool` message names the function it answers (`tool_name`). Each tool message answers the
earliest call still open of that name (or of any name, when it names none), as Ollama's own
templates pair them (a `tool_call_id`, which LangChain and Open WebUI send, names the call
itself). An assistant's `thinking` is dropped: no upstream takes it back; a field Ollama's
message does not have (OpenAI's `name`…) is not read, as Ollama does not read it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from clients.codec._json import (
    at,
    at_index,
    dump_json,
    expect_base64,
    expect_list,
    expect_object,
    expect_str,
    invalid_value,
    missing,
)
from clients.errors import InvalidRequestError

__all__ = ["chat_messages", "image_parts"]

JsonObject = dict[str, Any]

_ROLES = ("system", "user", "assistant", "tool")
# The first bytes of an image, base64-encoded, and its MIME type.
_SIGNATURES = {
    "iVBORw0KGgo": "image/png",
    "/9j/": "image/jpeg",
    "R0lGOD": "image/gif",
    "UklGR": "image/webp",
}


class _Calls:
    """The tool calls made so far and not yet answered, in order."""

    def __init__(self) -> None:
        self._open: deque[tuple[str, str]] = deque()  # (id, name)

    def made(self, call_id: str, name: str) -> None:
        self._open.append((call_id, name))

    def answered(self, name: str | None) -> str:
        for call in self._open:
            if name is None or call[1] == name:
                self._open.remove(call)
                return call[0]
        return f"call_{name or 'unknown'}"

    def answered_by_id(self, call_id: str) -> None:
        """The call a result names by its id is answered: no result named by name takes it."""
        for call in self._open:
            if call[0] == call_id:
                self._open.remove(call)
                return


def chat_messages(value: Any, path: str = "messages") -> list[JsonObject]:
    messages = expect_list(value, path)
    calls = _Calls()
    out = []
    for i, message in enumerate(messages):
        where = at_index(path, i)
        out.append(_message(expect_object(message, where), where, i, calls))
    return out


def _message(message: JsonObject, path: str, turn: int, calls: _Calls) -> JsonObject:
    if "role" not in message:
        missing(at(path, "role"))
    role = expect_str(message["role"], at(path, "role"))
    if role not in _ROLES:
        invalid_value(at(path, "role"), role, _ROLES)
    content = expect_str(message.get("content") or "", at(path, "content"))
    images = message.get("images") or []
    if images and role != "user":
        where = at(path, "images")
        raise InvalidRequestError(f"{where}: only a user message takes images", where)
    if role == "user" and images:
        parts = image_parts(images, at(path, "images"))
        text = [{"type": "text", "text": content}] if content else []
        return {"role": "user", "content": text + parts}
    if role == "tool":
        return _tool_result(message, content, path, calls)
    out: JsonObject = {"role": role, "content": content}
    if role == "assistant" and message.get("tool_calls"):
        where = at(path, "tool_calls")
        out["tool_calls"] = [
            _tool_call(call, at_index(where, j), calls, f"call_{turn}_{j}")
            for j, call in enumerate(expect_list(message["tool_calls"], where))
        ]
    return out


def _tool_result(message: JsonObject, content: str, path: str, calls: _Calls) -> JsonObject:
    call_id = message.get("tool_call_id")
    if call_id is not None:
        call_id = expect_str(call_id, at(path, "tool_call_id"))
        calls.answered_by_id(call_id)
    else:
        name = message.get("tool_name")
        name = None if name is None else expect_str(name, at(path, "tool_name"))
        call_id = calls.answered(name)
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _tool_call(value: Any, path: str, calls: _Calls, default_id: str) -> JsonObject:
    call = expect_object(value, path)
    function = expect_object(call.get("function"), at(path, "function"))
    where = at(path, "function")
    if "name" not in function:
        missing(at(where, "name"))
    name = expect_str(function["name"], at(where, "name"))
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):  # what an OpenAI-minded client may send: taken as it is
        text = arguments
    else:
        text = dump_json(expect_object(arguments, at(where, "arguments")), at(where, "arguments"))
    call_id = call.get("id") or default_id
    call_id = expect_str(call_id, at(path, "id"))
    calls.made(call_id, name)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def image_parts(value: Any, path: str) -> list[JsonObject]:
    """Base64 images as OpenAI `image_url` parts (data URLs)."""
    out = []
    for i, image in enumerate(expect_list(value, path)):
        where = at_index(path, i)
        data = expect_base64(image, where)  # not base64: refused, as Ollama refuses it
        mime = next((m for sig, m in _SIGNATURES.items() if data.startswith(sig)), None)
        if mime is None:
            raise InvalidRequestError(
                f"{where}: not a base64-encoded PNG, JPEG, GIF or WebP image", where
            )
        out.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}})
    return out
