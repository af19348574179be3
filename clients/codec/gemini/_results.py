"""A Gemini API generateContent body's function calls and their results (functionResponse
parts) as the OpenAI messages' tool call ids and `tool` messages (`_request`).

Followed:
- Function calling (a functionResponse answers the functionCall of the same name, or of the
  same id when the call had one): https://ai.google.dev/gemini-api/docs/function-calling. A
  functionResponse's own `parts` (its media: inlineData, fileData) follow its JSON in the
  tool message's content, as a user turn's would.
- FunctionResponse.response ("Use "output" key to specify function output and "error" key to
  specify error details (if any)"): https://ai.google.dev/api/caching#FunctionResponse. A
  response with `error` is a failed result (`TOOL_ERROR_KEY`, as a Messages API caller's
  `is_error`), its JSON as written: each provider says it in its own words.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from clients.codec._json import (
    at,
    at_index,
    dump_json,
    expect_list,
    expect_object,
    expect_str,
    missing,
)
from clients.codec.anthropic import TOOL_ERROR_KEY
from clients.codec.gemini._content import user_part
from clients.errors import InvalidRequestError

__all__ = ["Calls", "tool_result"]

JsonObject = dict[str, Any]


class Calls:
    """The function calls of the model's turns, by name, for the functionResponses without an
    id (the Gemini API's own calls have none): each answers the earliest open call of its name."""

    def __init__(self) -> None:
        self._open: defaultdict[str, deque[str]] = defaultdict(deque)

    def made(self, name: str, call_id: str) -> None:
        self._open[name].append(call_id)

    def answered(self, name: str, call_id: str | None) -> str:
        waiting = self._open[name]
        if call_id is not None:
            if call_id in waiting:
                waiting.remove(call_id)
            return call_id
        return waiting.popleft() if waiting else f"call_{name}"


def tool_result(value: Any, path: str, calls: Calls) -> JsonObject:
    """A functionResponse as the OpenAI `tool` message answering its call; one whose
    `response` has the `error` key (a failed call's details) is a failed result."""
    result = expect_object(value, path)
    if "name" not in result:
        missing(at(path, "name"))
    name = expect_str(result["name"], at(path, "name"))
    call_id = expect_str(result["id"], at(path, "id")) if result.get("id") else None
    response = expect_object(result.get("response", {}), at(path, "response"))
    content: str | list[JsonObject] = dump_json(response, at(path, "response"))
    if result.get("parts"):  # a multimodal function response: its media after its JSON
        where = at(path, "parts")
        media = [
            _response_part(part, at_index(where, j))
            for j, part in enumerate(expect_list(result["parts"], where))
        ]
        content = [{"type": "text", "text": content}, *media]
    message: JsonObject = {
        "role": "tool",
        "tool_call_id": calls.answered(name, call_id),
        "content": content,
    }
    if response.get("error") is not None:  # Gemini's word for a failed call: "error" details
        message[TOOL_ERROR_KEY] = True  # as a Messages API caller's `is_error`, said each way
    return message


def _response_part(value: Any, path: str) -> JsonObject:
    """A FunctionResponsePart: media only (inlineData, fileData). Text has no place there: it
    would join the response's JSON in the tool message's text, and that JSON would be lost."""
    part = expect_object(value, path)
    if "text" in part:
        raise InvalidRequestError(f"{path}: a function response's parts are media, not text", path)
    return user_part(part, path)
