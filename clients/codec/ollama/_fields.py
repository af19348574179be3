"""The OpenAI chat fields an Ollama body became → the Ollama fields the caller sent, so an
error the shared OpenAI checks give (the codec's, or the router's: `max_tokens` above
`server.max_tokens_ceiling`…) names what an Ollama caller can fix (`options.num_predict`).
"""

from __future__ import annotations

import re
from typing import Any

from clients.codec._request import chat_params_from_openai
from clients.codec.gemini import gemini_message as ollama_message
from clients.codec.ollama._request import chat_body, generate_body
from clients.codec.ollama._tables import OPTION_KEYS
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

# `ollama_message`: the Gemini entrance's own rewording (a field named in the message, or
# leading it), the same for this entrance.
__all__ = ["chat_request_from_ollama", "ollama_field", "ollama_message"]

JsonObject = dict[str, Any]

# OpenAI's chat key → the Ollama field it came from.
_FIELDS = {key: f"options.{option}" for option, key in OPTION_KEYS.items()} | {
    "response_format": "format",
    "reasoning_effort": "think",
    "tools": "tools",
    "messages": "messages",
}
_PATH = re.compile(r"(?P<key>\w+)(?P<rest>.*)", re.DOTALL)


def chat_request_from_ollama(
    body: JsonObject, generate: bool, stream: bool
) -> tuple[chat_pb2.ChatParams, bool]:
    """The chat params of an `/api/chat` (or, `generate`, an `/api/generate`) body; raises
    :class:`InvalidRequestError` naming the body's own field."""
    chat = generate_body(body, stream) if generate else chat_body(body, stream)
    try:
        return chat_params_from_openai(chat)
    except InvalidRequestError as exc:
        field = ollama_field(exc.param, generate)
        if field is None:
            raise
        raise InvalidRequestError(ollama_message(exc.message, exc.param, field), field) from exc


def ollama_field(param: str | None, generate: bool) -> str | None:
    """The Ollama field OpenAI's `param` stands for (None: none of them). A chat's messages
    are the caller's, one for one; a generate body's are its `system` and `prompt`."""
    match = _PATH.fullmatch(param or "")
    if match is None or match["key"] not in _FIELDS:
        return None
    key, rest = match["key"], match["rest"]
    if key == "messages" and generate:
        return "prompt"
    if key in ("response_format", "reasoning_effort", "stop"):
        return _FIELDS[key]
    return _FIELDS[key] + rest
