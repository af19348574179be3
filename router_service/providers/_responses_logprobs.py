"""Logprobs on the Responses API. A chat call's `logprobs: true` asks a Responses upstream with
`include: ["message.output_text.logprobs"]`, its `top_logprobs` as they are (0 to 20 there as
in chat); the `logprobs` of the answer's `output_text` parts (unary: each part's, the parts and
messages joined in order; streamed: each `response.output_text.delta`'s) are chat's
`logprobs.content` entries, in the same shape (`token`, `logprob`, `bytes`, `top_logprobs`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._responses_custom import INCLUDE
from clients.codec._responses_include import LOGPROBS

__all__ = ["ask_logprobs", "chat_logprobs", "part_logprobs"]

JsonObject = dict[str, Any]


def ask_logprobs(chat: Mapping[str, Any], body: JsonObject) -> None:
    """Ask `body` (a Responses body) for the logprobs the chat body `chat` asks for."""
    if isinstance(chat.get("top_logprobs"), int):  # a Responses field of the same name
        body["top_logprobs"] = chat["top_logprobs"]
    if chat.get("logprobs") is True:
        asked = body.get(INCLUDE)
        body[INCLUDE] = sorted({*(asked if isinstance(asked, list) else ()), LOGPROBS})


def part_logprobs(part: Mapping[str, Any]) -> list[Any]:
    """The logprob entries of an `output_text` part or `output_text.delta` event (none: [])."""
    entries = part.get("logprobs")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def chat_logprobs(entries: list[Any]) -> JsonObject | None:
    """A chat choice's `logprobs` of these entries; None when there are none (not asked)."""
    return {"content": entries, "refusal": None} if entries else None
