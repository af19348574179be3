"""What an answer's message (or a stream chunk's delta) says, as one text.

`content` is a string, or text parts. A model that refused a structured output (OpenAI's
`refusal`, the content null) said its refusal instead: the APIs whose answers have one place for
text (Gemini's parts, Ollama's content, Anthropic's text blocks, the legacy completions' `text`)
say it there, as those models' own refusals are said; an empty answer would tell the caller
nothing. The Responses API has a part of its own for it (`_responses_output`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["message_text", "said"]


def message_text(content: Any) -> str:
    """A chat message's ``content`` as one text: a string, or the text of its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def said(message: Mapping[str, Any]) -> str:
    """The text of a message (or a delta): its content, or else its refusal ("" for none)."""
    text = message_text(message.get("content"))
    if text:
        return text
    refusal = message.get("refusal")
    return refusal if isinstance(refusal, str) else ""
