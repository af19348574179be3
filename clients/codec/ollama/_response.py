"""An OpenAI `chat.completion` (as `chat_completion_to_openai` writes it) → Ollama's
`/api/chat` or `/api/generate` answer, and the pieces its stream (`_stream`) shares.

Ollama's answer ends with its counts and timings: `prompt_eval_count` and `eval_count` are the
usage's prompt and completion tokens; durations are nanoseconds of the edge's own wall clock
(`Timing`), `load_duration` always 0 (nothing is loaded here), and what the edge cannot tell
apart is 0 (a whole answer's prompt and eval durations: only its total is known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from clients.codec._said import said
from clients.codec.ollama._tables import DONE_REASONS

__all__ = [
    "Timing",
    "created_at",
    "done_fields",
    "embeddings_to_ollama",
    "load_answer",
    "response_to_ollama",
    "tool_calls_to_ollama",
]

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """What the edge measured, in nanoseconds: the whole request, and the part before the
    first token (the prompt's) and after it (the answer's); 0 when not told apart."""

    total_ns: int
    prompt_ns: int = 0
    eval_ns: int = 0


def created_at(now: float) -> str:
    """An RFC 3339 time in UTC, as Ollama writes `created_at`."""
    return datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")


def done_fields(finish: Any, usage: Mapping[str, Any] | None, timing: Timing) -> JsonObject:
    """The last object's `done: true` and its counts and durations."""
    usage = usage or {}
    return {
        "done": True,
        "done_reason": DONE_REASONS.get(str(finish), "stop") if finish else "stop",
        "total_duration": timing.total_ns,
        "load_duration": 0,
        "prompt_eval_count": int(usage.get("prompt_tokens") or 0),
        "prompt_eval_duration": timing.prompt_ns,
        "eval_count": int(usage.get("completion_tokens") or 0),
        "eval_duration": timing.eval_ns,
    }


def _arguments(text: str) -> JsonObject:
    """A tool call's arguments as an object: arguments that are not one (an answer cut off
    mid-call) are empty."""
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def tool_calls_to_ollama(calls: Any) -> list[JsonObject]:
    """OpenAI's tool calls as Ollama's: `arguments` an object, the call's id kept (`id`)."""
    out = []
    for index, call in enumerate(calls or ()):
        function = call.get("function") or {}
        arguments = _arguments(str(function.get("arguments") or ""))
        name = str(function.get("name") or "")
        out.append(
            {
                "id": str(call.get("id") or ""),
                "function": {"index": index, "name": name, "arguments": arguments},
            }
        )
    return out


def _message(message: Mapping[str, Any]) -> JsonObject:
    out: JsonObject = {"role": "assistant", "content": said(message)}
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        out["thinking"] = reasoning
    if message.get("tool_calls"):
        out["tool_calls"] = tool_calls_to_ollama(message["tool_calls"])
    return out


def response_to_ollama(
    completion: Mapping[str, Any], model: str, generate: bool, timing: Timing, now: float
) -> JsonObject:
    """The answer to `/api/chat` (or, `generate`, `/api/generate`) for a chat completion: its
    first choice's message, named by the `model` the caller asked for."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = _message(choice.get("message") or {})
    out: JsonObject = {"model": model, "created_at": created_at(now)}
    if generate:
        out["response"] = message["content"]
        if "thinking" in message:
            out["thinking"] = message["thinking"]
    else:
        out["message"] = message
    return out | done_fields(choice.get("finish_reason"), completion.get("usage"), timing)


def load_answer(model: str, generate: bool, unload: bool, now: float) -> JsonObject:
    """Ollama's answer to a body with nothing to answer (no prompt, no messages): it loads the
    model (or, with `keep_alive: 0`, unloads it). Nothing to do here: the model is known."""
    out: JsonObject = {"model": model, "created_at": created_at(now)}
    if generate:
        out["response"] = ""
    else:
        out["message"] = {"role": "assistant", "content": ""}
    return out | {"done": True, "done_reason": "unload" if unload else "load"}


def embeddings_to_ollama(
    result: Mapping[str, Any], model: str, legacy: bool, timing: Timing
) -> JsonObject:
    """An OpenAI embeddings list as `/api/embed`'s answer (or, `legacy`, `/api/embeddings`'s:
    the one `embedding`)."""
    data = sorted(result.get("data") or (), key=lambda item: int(item.get("index") or 0))
    vectors = [list(item.get("embedding") or ()) for item in data]
    if legacy:
        return {"embedding": vectors[0] if vectors else []}
    usage = result.get("usage") or {}
    return {
        "model": model,
        "embeddings": vectors,
        "total_duration": timing.total_ns,
        "load_duration": 0,
        "prompt_eval_count": int(usage.get("prompt_tokens") or 0),
    }
