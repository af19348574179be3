"""The request bodies and parameters of the edge's OpenAPI document (`GET /openapi.json`).

The routes read their bodies themselves (size limit first, then the codec), so FastAPI cannot
infer these schemas; they describe the OpenAI shapes the codec accepts, for clients, generators
and the edge's own schema-driven fuzz test. Every error answer is OpenAI's error object.

The routes read their path and query parameters from the request too: a parameter declared in a
route's signature makes FastAPI build a pydantic field for it and import `pydantic.v1` (to reject
v1 models), 1.5 MiB of the edge's idle memory for three strings. They are described here instead.
"""

from __future__ import annotations

from typing import Any

from clients import INCLUDABLE

__all__ = [
    "CHAT_COMPLETIONS",
    "COMPLETIONS",
    "CONVERSATION",
    "CONVERSATION_ID_PARAM",
    "CONVERSATION_ITEMS",
    "CONVERSATION_ITEMS_LIST",
    "CONVERSATION_ITEM_GET",
    "CONVERSATION_ITEM_PARAMS",
    "CONVERSATION_UPDATE",
    "EMBEDDINGS",
    "ERRORS",
    "INPUT_ITEMS_PARAMS",
    "JOBS_LIMIT_PARAM",
    "MESSAGES",
    "MESSAGES_COUNT_TOKENS",
    "MODEL_ID_PARAM",
    "PROVIDER_PARAM",
    "RESPONSE_ID_PARAM",
    "RETRIEVE_PARAMS",
    "json_operation",
]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "OpenAI's error object (400, 401, 403, 404, 413, 429, 5xx).",
        "content": {"application/json": {"schema": _ERROR}},
    }
}

_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": _TEXT_PART},
                {"type": "null"},
            ]
        },
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
    },
}
# The sampling and streaming options chat completions and legacy completions share.
_SAMPLING = {
    "stream": {"type": "boolean"},
    "stream_options": {
        "type": "object",
        "properties": {"include_usage": {"type": "boolean"}},
    },
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "n": {"type": "integer", "minimum": 1, "maximum": 8},
    "seed": {"type": "integer"},
    "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "user": {"type": "string"},
}
_CHAT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        **_SAMPLING,
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
# Legacy text completions: one prompt, answered by a chat model (see `_routes_completions`).
_COMPLETIONS_REQUEST = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "prompt": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1},
            ]
        },
        "max_tokens": {"type": "integer", "minimum": 1, "default": 16},
        **_SAMPLING,
        "echo": {"type": "boolean"},
        "logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "logit_bias": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
_EMBEDDINGS_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "array", "items": {"type": "integer", "minimum": 0}},
                {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                },
            ]
        },
        "encoding_format": {"enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1},
        "user": {"type": "string"},
    },
}


def json_operation(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": ERRORS,
    }


# Anthropic's Messages API (`_routes_messages`): its request, and its own error object.
_BLOCKS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
_ANTHROPIC_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"enum": ["user", "assistant", "system"]}, "content": _BLOCKS},
}
_PROMPT = {
    "model": {"type": "string"},
    "system": _BLOCKS,
    "messages": {"type": "array", "items": _ANTHROPIC_MESSAGE},
    "tools": {"type": "array", "items": {"type": "object"}},
    "tool_choice": {"type": "object"},
    "thinking": {"type": "object"},
}
_MESSAGES_REQUEST = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        **_PROMPT,
        "max_tokens": {"type": "integer", "minimum": 1},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number"},
        "top_k": {"type": "integer"},
        "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
        "stream": {"type": "boolean"},
    },
}
_ANTHROPIC_ERRORS = {
    "default": {
        "description": "Anthropic's error object (400, 401, 403, 404, 413, 429, 500, 529).",
        "content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}},
    }
}


def _anthropic_operation(schema: dict[str, Any]) -> dict[str, Any]:
    return {**json_operation(schema), "responses": _ANTHROPIC_ERRORS}


MESSAGES = _anthropic_operation(_MESSAGES_REQUEST)
MESSAGES_COUNT_TOKENS = _anthropic_operation(
    {"type": "object", "required": ["model", "messages"], "properties": _PROMPT}
)
CHAT_COMPLETIONS = json_operation(_CHAT_REQUEST)
COMPLETIONS = json_operation(_COMPLETIONS_REQUEST)
EMBEDDINGS = json_operation(_EMBEDDINGS_REQUEST)

MODEL_ID_PARAM: dict[str, Any] = {
    "parameters": [
        {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
}
PROVIDER_PARAM: dict[str, Any] = {
    "parameters": [
        {
            "name": "provider",
            "in": "query",
            "required": False,
            "description": "Only this provider's keys.",
            "schema": {"type": "string", "default": ""},
        }
    ]
}
JOBS_LIMIT_PARAM: dict[str, Any] = {
    "parameters": [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "At most this many of each kind, newest first (0: the router's 50).",
            "schema": {"type": "integer", "minimum": 0, "maximum": 500, "default": 0},
        }
    ]
}
_RESPONSE_ID = {"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}
# OpenAI's `include` values, as the SDK sends a list in a query (`include[]=…`).
_INCLUDE = {
    "name": "include[]",
    "in": "query",
    "required": False,
    "schema": {"type": "array", "items": {"enum": list(INCLUDABLE)}},
}
RESPONSE_ID_PARAM: dict[str, Any] = {
    "parameters": [
        _RESPONSE_ID,
        {"name": "stream", "in": "query", "required": False, "schema": {"type": "boolean"}},
        _INCLUDE,
    ],
}
# GET /v1/responses/{id}: with `stream`, a streamed background response's events after
# `starting_after` (SSE).
RETRIEVE_PARAMS: dict[str, Any] = {
    "parameters": [
        *RESPONSE_ID_PARAM["parameters"],
        {"name": "starting_after", "in": "query", "required": False, "schema": {"type": "integer"}},
    ]
}
INPUT_ITEMS_PARAMS: dict[str, Any] = {
    "parameters": [
        _RESPONSE_ID,
        _INCLUDE,
        {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        },
        {"name": "order", "in": "query", "required": False, "schema": {"enum": ["asc", "desc"]}},
    ],
}

_METADATA = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 512}}
_ITEMS = {"type": "array", "maxItems": 20, "items": {"type": "object"}}
_CONVERSATION_ID = {
    "name": "conversation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_ITEM_ID = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}
CONVERSATION = json_operation(
    {"type": "object", "properties": {"items": _ITEMS, "metadata": _METADATA}}
)
CONVERSATION_ID_PARAM: dict[str, Any] = {"parameters": [_CONVERSATION_ID]}
CONVERSATION_UPDATE = {
    **json_operation(
        {
            "type": "object",
            "required": ["metadata"],
            "properties": {"metadata": {"anyOf": [_METADATA, {"type": "null"}]}},  # null: clear
        }
    ),
    **CONVERSATION_ID_PARAM,
}
CONVERSATION_ITEMS = {
    **json_operation({"type": "object", "required": ["items"], "properties": {"items": _ITEMS}}),
    "parameters": [_CONVERSATION_ID, _INCLUDE],
}
CONVERSATION_ITEMS_LIST: dict[str, Any] = {
    "parameters": [_CONVERSATION_ID, *INPUT_ITEMS_PARAMS["parameters"][1:]]
}
CONVERSATION_ITEM_PARAMS: dict[str, Any] = {"parameters": [_CONVERSATION_ID, _ITEM_ID]}
CONVERSATION_ITEM_GET: dict[str, Any] = {"parameters": [_CONVERSATION_ID, _ITEM_ID, _INCLUDE]}
