"""Ollama API words the edge's entrance shares between its requests, answers and errors.

Followed: https://github.com/ollama/ollama/blob/main/docs/api.md (the chat, generate, embed,
tags, show, ps and version endpoints; `options` are the Modelfile's parameters,
https://github.com/ollama/ollama/blob/main/docs/modelfile.md#valid-parameters-and-values).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DONE_REASONS",
    "MANAGEMENT",
    "OPTION_KEYS",
    "THINK_EFFORTS",
    "VERSION",
    "ollama_error",
]

# The Ollama version `/api/version` reports: one whose API this entrance speaks (`think`,
# `tool_name`, `/api/embed` with `dimensions`), so a client that checks features by version
# uses them.
VERSION = "0.12.0"

# `options` keys → OpenAI's chat keys, the same value (`top_k` is not OpenAI's: it rides as an
# extra, as the Gemini entrance's topK does, for the upstreams that take it).
OPTION_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "num_predict": "max_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "stop": "stop",
}
# `think` → OpenAI's `reasoning_effort` (`true`: the deployment's own default, nothing set).
THINK_EFFORTS: dict[Any, str | None] = {
    True: None,
    False: "none",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
# OpenAI's finish_reason → Ollama's done_reason (a tool call, or a filtered answer, stops).
DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "content_filter": "stop"}
# The model management endpoints, each refused: the models are the router's configuration.
MANAGEMENT = ("pull", "push", "create", "copy", "delete", "blobs")


def ollama_error(message: str) -> dict[str, str]:
    """Ollama's error body (the status says the rest); a failed stream's last line too."""
    return {"error": message}
