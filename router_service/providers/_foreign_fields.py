"""The message fields another kind's reasoning rides in, taken out of an OpenAI-format body.

A caller hands back the reasoning an answer came with where the answering kind takes it: Claude's
signed thinking as an assistant message's `thinking_blocks` (LiteLLM's field; the Anthropic
Messages entrance writes it too), Gemini's thought signature as a tool call's
`extra_content.google.thought_signature` (where Google's OpenAI-compatible endpoint takes it).
A group may fail over to another kind, and OpenAI-compatible servers with a strict schema refuse
a message property they do not know (OpenAI's "Additional properties are not allowed
('thinking_blocks' was unexpected)", Groq's "property … is unsupported", pydantic-based servers'
"Extra inputs are not permitted"): an OpenAI-format deployment gets neither field, but Google's
endpoint its own `extra_content`. Claude's kinds (Anthropic, Bedrock, Vertex) and Gemini's build
their own bodies and read these fields there. Other reasoning fields (`reasoning_content`,
`reasoning`, `reasoning_details`) are OpenAI-compatible servers' own (DeepSeek, vLLM,
OpenRouter) and pass.
"""

from __future__ import annotations

from typing import Any

__all__ = ["without_foreign_fields"]

THINKING_BLOCKS = "thinking_blocks"
EXTRA_CONTENT = "extra_content"


def without_foreign_fields(body: dict[str, Any], *, google: bool = False) -> None:
    """`body`'s messages without Claude's `thinking_blocks`, and, unless `google` (Google's
    endpoint), their tool calls without `extra_content`; in place."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        message.pop(THINKING_BLOCKS, None)
        calls = message.get("tool_calls")
        if google or not isinstance(calls, list):
            continue
        for call in calls:
            if isinstance(call, dict):
                call.pop(EXTRA_CONTENT, None)
