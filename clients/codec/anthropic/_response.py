"""An OpenAI `chat.completion` (as `chat_completion_to_openai` writes it) → an Anthropic
Messages API `message`; and the pieces its stream (`_stream`) shares.

Followed: https://docs.claude.com/en/api/messages (the response: id `msg_…`, content blocks
text / tool_use / thinking, stop_reason, stop_sequence, usage with the cache's input tokens
apart) and https://docs.claude.com/en/docs/build-with-claude/extended-thinking (thinking blocks
carry a `signature`; an answer from an upstream that signs none has an empty one, which an
Anthropic upstream drops when it comes back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from clients.codec._said import said
from clients.codec.anthropic._server_tools import CONTENT_KEY, STOP_KEY
from clients.codec.anthropic._tables import STOP_REASON_BY_FINISH

__all__ = ["message_id", "message_to_anthropic", "stop_reason", "stopped", "usage_to_anthropic"]

JsonObject = dict[str, Any]


def message_id(completion_id: str) -> str:
    """Anthropic's `msg_…` id: an Anthropic upstream's own, or the completion's prefixed."""
    return completion_id if completion_id.startswith("msg_") else f"msg_{completion_id}"


def stop_reason(finish_reason: Any) -> str:
    return STOP_REASON_BY_FINISH.get(str(finish_reason), "end_turn")


def stopped(
    finish_reason: Any,
    matched: Any,
    text: str,
    stops: Sequence[str],
    claude: Any = None,
    *,
    called: bool = False,
) -> JsonObject:
    """`stop_reason` and `stop_sequence`: a "stop" that a stop sequence ended is
    `stop_sequence`, naming it. Which one, the upstream says (`matched`: the choice's
    `stop_reason`, see `chat.proto` `matched_stop`), else it is the one `text` ends with (an
    upstream that leaves it in); OpenAI's API cuts it out and says none: an `end_turn`. `claude`:
    a Claude deployment's own stop reason that no finish reason says (`pause_turn`). `called`:
    the answer calls tools, a `tool_use` stop though the upstream said "stop" (as some
    OpenAI-compatible servers do): a caller's tool loop runs the tools on a `tool_use` stop
    only."""
    if isinstance(claude, str) and claude:
        return {"stop_reason": claude, "stop_sequence": None}
    if called and str(finish_reason) == "stop":
        return {"stop_reason": "tool_use", "stop_sequence": None}
    if str(finish_reason) == "stop":
        if not isinstance(matched, str):
            matched = next((s for s in stops if s and text.endswith(s)), None)
        if matched is not None:
            return {"stop_reason": "stop_sequence", "stop_sequence": matched}
    return {"stop_reason": stop_reason(finish_reason), "stop_sequence": None}


def usage_to_anthropic(usage: Mapping[str, Any] | None) -> JsonObject:
    """OpenAI counts the prompt cache's tokens (read, and written: `cache_write_tokens`, of
    which `cache_write_1h_tokens` kept an hour) inside prompt_tokens; Anthropic's
    `input_tokens` are the rest, the cache's counted apart."""
    if not usage:
        return {"input_tokens": 0, "output_tokens": 0}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    hour = min(int(details.get("cache_write_1h_tokens") or 0), written)
    out: JsonObject = {
        "input_tokens": max(int(usage.get("prompt_tokens") or 0) - cached - written, 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }
    if written:
        out["cache_creation_input_tokens"] = written
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": written - hour,
            "ephemeral_1h_input_tokens": hour,
        }
    if cached:
        out["cache_read_input_tokens"] = cached
    if isinstance(usage.get("server_tool_use"), Mapping):  # a Claude deployment's, as it said
        out["server_tool_use"] = dict(usage["server_tool_use"])
    return out


def tool_input(arguments: str) -> JsonObject:
    """A tool call's arguments as the tool_use block's `input` (an object): arguments that are
    not one (an answer cut off mid-call) give an empty input."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def thinking_blocks(message: Mapping[str, Any]) -> list[JsonObject]:
    """An answer's thinking: an Anthropic upstream's signed blocks as they came, else the
    reasoning text other upstreams give (`reasoning_content`) as one unsigned block."""
    signed = message.get("thinking_blocks")
    if isinstance(signed, list) and signed:
        return [dict(block) for block in signed if isinstance(block, dict)]
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def message_to_anthropic(completion: Mapping[str, Any], stops: Sequence[str] = ()) -> JsonObject:
    """The Messages API answer for a chat completion (its first choice: Anthropic has no `n`);
    `stops`: the request's `stop_sequences`."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content = claude_content(message) or _content(message)
    stop = stopped(
        choice.get("finish_reason"),
        choice.get("stop_reason"),
        said(message),
        stops,
        choice.get(STOP_KEY),
        called=bool(message.get("tool_calls")),
    )
    return {
        "id": message_id(str(completion.get("id", ""))),
        "type": "message",
        "role": "assistant",
        "model": str(completion.get("model", "")),
        "content": content,
        **stop,
        "usage": usage_to_anthropic(completion.get("usage")),
    }


def claude_content(message: Mapping[str, Any]) -> list[JsonObject]:
    """A Claude deployment's content blocks as it gave them (server tool blocks, cited text),
    when the message carries them and its text is still theirs (a response guardrail that
    changed the text wins: the answer is then said from the message, without them)."""
    blocks = message.get(CONTENT_KEY)
    if not isinstance(blocks, list):
        return []
    blocks = [dict(block) for block in blocks if isinstance(block, Mapping)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    return blocks if text == (message.get("content") or "") else []


def _content(message: Mapping[str, Any]) -> list[JsonObject]:
    """An answer's blocks from the chat message: thinking, its text, its tool calls."""
    content = thinking_blocks(message)
    text = said(message)  # a refusal too (`_said`)
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id", "")),
                "name": str(function.get("name", "")),
                "input": tool_input(str(function.get("arguments") or "")),
            }
        )
    return content
