"""The Ollama API routes in the edge's OpenAPI document (as `_openapi`'s): the bodies of
`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings` and `/api/show`, and Ollama's
own error object (`{"error": "message"}`)."""

from __future__ import annotations

from typing import Any

from ._openapi import json_operation

__all__ = ["CHAT", "EMBED", "EMBEDDINGS", "GENERATE", "PLAIN", "SHOW"]

_OPTIONS = {
    "type": "object",
    "description": "temperature, top_p, top_k, seed, stop, num_predict, presence_penalty and "
    "frequency_penalty are read; any other (a local runner's num_ctx, num_gpu…) is ignored, "
    "as Ollama ignores an option it does not know.",
}
_FORMAT = {"oneOf": [{"enum": ["", "json"]}, {"type": "object"}]}
_THINK = {"oneOf": [{"type": "boolean"}, {"enum": ["low", "medium", "high"]}]}
_COMMON = {
    "model": {"type": "string", "minLength": 1},
    "format": _FORMAT,
    "options": _OPTIONS,
    "stream": {"type": "boolean", "description": "Ollama's default: true (NDJSON)."},
    "keep_alive": {"oneOf": [{"type": "string"}, {"type": "number"}]},
    "think": _THINK,
}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": {"type": "string"},
        "images": {"type": "array", "items": {"type": "string"}},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_name": {"type": "string"},
        "thinking": {"type": "string"},
    },
}
_CHAT = {
    "type": "object",
    "required": ["model"],
    "properties": {
        **_COMMON,
        "messages": {"type": "array", "items": _MESSAGE},
        "tools": {"type": "array", "items": {"type": "object"}},
    },
}
_GENERATE = {
    "type": "object",
    "required": ["model"],
    "properties": {
        **_COMMON,
        "prompt": {"type": "string"},
        "system": {"type": "string"},
        "images": {"type": "array", "items": {"type": "string"}},
        "raw": {
            "type": "boolean",
            "description": "false only (the default): a raw, already templated prompt is a 400.",
        },
    },
}
_EMBED = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "truncate": {"type": "boolean"},
        "dimensions": {"type": "integer", "minimum": 1},
        "options": {"type": "object"},
        "keep_alive": {"oneOf": [{"type": "string"}, {"type": "number"}]},
    },
}
_EMBEDDINGS = {
    "type": "object",
    "required": ["model"],
    "properties": {"model": {"type": "string", "minLength": 1}, "prompt": {"type": "string"}},
}
_SHOW = {
    "type": "object",
    "required": ["model"],
    "properties": {"model": {"type": "string", "minLength": 1}, "verbose": {"type": "boolean"}},
}
_ERRORS = {
    "default": {
        "description": 'Ollama\'s error object ({"error": "message"}).',
        "content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}},
    }
}


def _operation(schema: dict[str, Any]) -> dict[str, Any]:
    return {**json_operation(schema), "responses": _ERRORS}


CHAT = _operation(_CHAT)
GENERATE = _operation(_GENERATE)
EMBED = _operation(_EMBED)
EMBEDDINGS = _operation(_EMBEDDINGS)
SHOW = _operation(_SHOW)
PLAIN: dict[str, Any] = {"responses": _ERRORS}
