"""The Gemini API routes in the edge's OpenAPI document (as `_openapi`'s): the bodies of
generateContent (and streamGenerateContent, countTokens), embedContent, batchEmbedContents, the
`{model}` path parameter, and Gemini's own error object."""

from __future__ import annotations

from typing import Any

from ._openapi import json_operation

__all__ = [
    "BATCH_EMBED_CONTENTS",
    "COUNT_TOKENS",
    "EMBED_CONTENT",
    "GENERATE_CONTENT",
    "GET_MODEL",
    "LIST_MODELS",
    "STREAM_GENERATE_CONTENT",
]

_PARTS = {"type": "array", "items": {"type": "object"}}
_CONTENT = {
    "type": "object",
    "required": ["parts"],
    "properties": {"role": {"enum": ["user", "model"]}, "parts": _PARTS},
}
_GENERATION_CONFIG = {
    "type": "object",
    "properties": {
        "temperature": {"type": "number"},
        "topP": {"type": "number"},
        "topK": {"type": "integer", "minimum": 1},
        "maxOutputTokens": {"type": "integer", "minimum": 1},
        "stopSequences": {"type": "array", "items": {"type": "string"}},
        "candidateCount": {"type": "integer", "minimum": 1},
        "responseMimeType": {"enum": ["text/plain", "application/json"]},
        "responseSchema": {"type": "object"},
        "responseJsonSchema": {"type": "object"},
        "seed": {"type": "integer"},
        "presencePenalty": {"type": "number"},
        "frequencyPenalty": {"type": "number"},
        "responseLogprobs": {"type": "boolean"},
        "logprobs": {"type": "integer"},
        "responseModalities": {"type": "array", "items": {"enum": ["TEXT"]}},
        "thinkingConfig": {
            "type": "object",
            "description": "Becomes `reasoning_effort`; thinkingBudget or thinkingLevel, not both.",
            "properties": {
                "thinkingBudget": {"type": "integer", "minimum": -1},
                "thinkingLevel": {"enum": ["MINIMAL", "LOW", "MEDIUM", "HIGH"]},
                "includeThoughts": {"type": "boolean"},
            },
        },
    },
}
_GENERATE_REQUEST = {
    "type": "object",
    "required": ["contents"],
    "properties": {
        "contents": {"type": "array", "minItems": 1, "items": _CONTENT},
        "systemInstruction": _CONTENT,
        "generationConfig": _GENERATION_CONFIG,
        "tools": {"type": "array", "items": {"type": "object"}},
        "toolConfig": {"type": "object"},
        "safetySettings": {"type": "array", "items": {"type": "object"}},
    },
}
_EMBED_REQUEST = {
    "type": "object",
    "required": ["content"],
    "properties": {
        "model": {"type": "string"},
        "content": _CONTENT,
        "taskType": {"type": "string"},
        "title": {"type": "string"},
        "outputDimensionality": {"type": "integer", "minimum": 1},
    },
}
_BATCH_EMBED_REQUEST = {
    "type": "object",
    "required": ["requests"],
    "properties": {"requests": {"type": "array", "minItems": 1, "items": _EMBED_REQUEST}},
}
_COUNT_TOKENS_REQUEST = {
    "type": "object",
    "properties": {
        "contents": {"type": "array", "items": _CONTENT},
        "generateContentRequest": _GENERATE_REQUEST,
    },
}
_ERRORS = {
    "default": {
        "description": 'Gemini\'s error object ({"error": {"code", "message", "status"}}).',
        "content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}},
    }
}
_MODEL = {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
_MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY = {"name": "key", "in": "query", "required": False, "schema": {"type": "string"}}
_ALT = {"name": "alt", "in": "query", "required": False, "schema": {"enum": ["sse", "json"]}}


def _operation(schema: dict[str, Any], *parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        **json_operation(schema),
        "parameters": [_MODEL, _KEY, *parameters],
        "responses": _ERRORS,
    }


GENERATE_CONTENT = _operation(_GENERATE_REQUEST)
STREAM_GENERATE_CONTENT = _operation(_GENERATE_REQUEST, _ALT)
COUNT_TOKENS = _operation(_COUNT_TOKENS_REQUEST)
EMBED_CONTENT = _operation(_EMBED_REQUEST)
BATCH_EMBED_CONTENTS = _operation(_BATCH_EMBED_REQUEST)
GET_MODEL: dict[str, Any] = {"parameters": [_MODEL_ID, _KEY], "responses": _ERRORS}
_PAGE_SIZE = {
    "name": "pageSize",
    "in": "query",
    "required": False,
    "description": "Models a page (default 50; more than 1000 is 1000).",
    "schema": {"type": "integer", "minimum": 0},
}
_PAGE_TOKEN = {
    "name": "pageToken",
    "in": "query",
    "required": False,
    "description": "The `nextPageToken` of the page before.",
    "schema": {"type": "string"},
}
LIST_MODELS: dict[str, Any] = {"parameters": [_KEY, _PAGE_SIZE, _PAGE_TOKEN], "responses": _ERRORS}
