"""The OpenAI chat fields a generateContent body became → the Gemini fields the caller sent, so
an error the shared OpenAI checks give (the codec's, or the router's: `max_tokens` above
`server.max_tokens_ceiling`, `n` above `server.max_n`…) names what a Gemini caller can fix.

Gemini's error has no `param`: Google names a field in the message, as a quoted path
("Invalid JSON payload received. Unknown name "x" at 'tools[0].function_declarations[5]'"), and
so does this entrance (in the JSON names the caller wrote: `generationConfig.candidateCount`).
"""

from __future__ import annotations

import re
from typing import Any

from clients.codec._request import chat_params_from_openai
from clients.codec.gemini._carried import GEMINI_ONLY
from clients.codec.gemini._request import SAME, chat_messages, chat_tools, openai_chat_body
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

__all__ = ["gemini_field", "gemini_message", "generate_request_from_gemini"]

JsonObject = dict[str, Any]

# OpenAI's chat key → the Gemini field it came from (those with an index: `gemini_field`).
_FIELDS = {key: f"generationConfig.{native}" for native, key in SAME.items()} | {
    "messages": "contents",
    "stop": "generationConfig.stopSequences",
    "response_format": "generationConfig.responseMimeType",
    "tool_choice": "toolConfig.functionCallingConfig",
    "tools": "tools",
}
# Keys whose inside is shaped otherwise in Gemini's body: named whole.
_WHOLE = frozenset({"messages", "response_format", "tool_choice"})
# `messages[2].content`: the key, its index, and the rest of the path.
_PATH = re.compile(r"(?P<key>\w+)(?:\[(?P<index>\d+)\])?(?P<rest>.*)", re.DOTALL)


def generate_request_from_gemini(
    model: str, body: dict[str, Any], stream: bool
) -> tuple[chat_pb2.ChatParams, bool]:
    """The chat params of a generateContent body for `model` (the path's); raises
    :class:`InvalidRequestError` naming the path of what is wrong or not expressible, in the
    body's own names."""
    chat = openai_chat_body(model, body, stream)
    try:
        return chat_params_from_openai(chat)
    except InvalidRequestError as exc:
        field = gemini_field(exc.param, body)
        if field is None:
            raise
        raise InvalidRequestError(gemini_message(exc.message, exc.param, field), field) from exc


def gemini_field(param: str | None, body: JsonObject) -> str | None:
    """The field of the generateContent `body` (one that translated) that OpenAI's `param`
    stands for (None: it names none of them). A message is its turn (`contents[3]`), a tool
    its declaration (`tools[0].functionDeclarations[1].name`)."""
    match = _PATH.fullmatch(param or "")
    if match is None or (match["key"] not in _FIELDS and match["key"] != GEMINI_ONLY):
        return None
    key, index, rest = match["key"], match["index"], match["rest"]
    if key == "logprobs" and not (body.get("generationConfig") or {}).get("responseLogprobs"):
        key = "top_logprobs"  # asked by `logprobs` alone (the codec asks responseLogprobs for it)
    if key == GEMINI_ONLY:  # the entrance carried the caller's own field there
        return rest.removeprefix(".") if index is None and rest.startswith(".") else None
    if index is None:
        return _FIELDS[key] + ("" if key in _WHOLE else rest)
    if key == "messages":
        origins = [origin for origin, _ in chat_messages(body)]
        return origins[int(index)] if int(index) < len(origins) else "contents"
    if key == "tools":
        declarations = _declarations(body)
        where = declarations[int(index)] if int(index) < len(declarations) else "tools"
        return where + rest.removeprefix(".function")
    return f"{_FIELDS[key]}[{index}]{rest}"


def gemini_message(message: str, param: str | None, field: str) -> str:
    """`message` with OpenAI's `param` said as the Gemini `field`, or led by it when the
    message does not quote it."""
    said = message
    if param:
        for quote in ("'", "`"):
            said = said.replace(f"{quote}{param}{quote}", f"{quote}{field}{quote}")
        # A reason led by the path it is about (`x.y: …`), alone or among several (`…; x.y: …`).
        said = re.sub(rf"(?:^|(?<=: )|(?<=; )){re.escape(param)}(?=: )", field, said)
    return said if said != message else f"{field}: {message}"


def _declarations(body: JsonObject) -> list[str]:
    """The path of each function declaration that became one of OpenAI's tools, in their
    order: all of them, or those `ANY`'s allowedFunctionNames kept (in the same order)."""
    declared = [
        (f"tools[{i}].functionDeclarations[{j}]", declaration.get("name"))
        for i, tool in enumerate(body.get("tools") or ())
        for j, declaration in enumerate(tool.get("functionDeclarations") or ())
    ]
    kept = chat_tools(body.get("tools"), body.get("toolConfig"))["tools"]
    out, remaining = [], iter(declared)
    for tool in kept:
        wanted = tool["function"]["name"]
        path = next((path for path, name in remaining if name == wanted), None)
        if path is not None:
            out.append(path)
    return out
