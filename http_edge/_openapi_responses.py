"""The request bodies of the edge's Responses API routes in its OpenAPI document (as
`_openapi`'s): `POST /v1/responses`, `/v1/responses/input_tokens` and `/v1/responses/compact`."""

from __future__ import annotations

from typing import Any

from clients.codec._responses_hosted import HOSTED_ITEM_TYPES, HOSTED_TOOLS

from ._openapi import json_operation

__all__ = ["RESPONSES", "RESPONSES_COMPACT", "RESPONSES_INPUT_TOKENS"]

_INPUT_ITEM = {
    "type": "object",
    "properties": {
        "type": {
            "enum": [
                *("message", "function_call", "function_call_output", "reasoning"),
                *("custom_tool_call", "custom_tool_call_output", "item_reference", "compaction"),
                *sorted(HOSTED_ITEM_TYPES),  # for a Responses API deployment
            ]
        },
        "id": {"type": "string"},
        "role": {"enum": ["user", "system", "developer", "assistant"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {
                            "type": {"enum": ["input_text", "output_text"]},
                            "text": {"type": "string"},
                        },
                    },
                },
            ]
        },
        "call_id": {"type": "string"},
        "name": {"type": "string"},
        "arguments": {"type": "string"},
        "input": {"type": "string"},  # a custom tool call's
        "output": {"type": "string"},
        # a compaction's (`/v1/responses/compact`), a reasoning item's
        "encrypted_content": {"type": "string"},
    },
}
_FUNCTION_TOOL = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {"const": "function"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "parameters": {"type": "object"},
        "strict": {"type": "boolean"},
    },
}
_CUSTOM_TOOL = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {"const": "custom"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "format": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": ["text", "grammar"]},
                "syntax": {"enum": ["lark", "regex"]},
                "definition": {"type": "string"},
            },
        },
    },
}
# OpenAI's hosted tools, passed as they are to a Responses API deployment (their other fields
# are OpenAI's: clients/codec/_responses_hosted.py).
_HOSTED_TOOL = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": sorted(HOSTED_TOOLS)}},
}
# The subset the edge translates (see `_routes_responses`).
_RESPONSE_FIELDS: dict[str, Any] = {
    "model": {"type": "string", "minLength": 1},
    "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": _INPUT_ITEM}]},
    "instructions": {"type": "string"},
    "stream": {"type": "boolean"},
    "tools": {"type": "array", "items": {"anyOf": [_FUNCTION_TOOL, _CUSTOM_TOOL, _HOSTED_TOOL]}},
    "tool_choice": {
        "anyOf": [
            {"enum": ["auto", "none", "required"]},
            {
                "type": "object",
                "required": ["type", "name"],
                "properties": {
                    "type": {"enum": ["function", "custom"]},
                    "name": {"type": "string"},
                },
            },
            _HOSTED_TOOL,
        ]
    },
    "parallel_tool_calls": {"type": "boolean"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "max_output_tokens": {"type": "integer", "minimum": 1},
    "text": {
        "type": "object",
        "properties": {
            "format": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}},
            }
        },
    },
    "reasoning": {"type": "object", "properties": {"effort": {"type": "string"}}},
    "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    "user": {"type": "string"},
    "store": {"type": "boolean"},
    "previous_response_id": {"type": "string"},
}
_RESPONSES_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": _RESPONSE_FIELDS,
}

RESPONSES = json_operation(_RESPONSES_REQUEST)
# `POST /v1/responses`'s body (`input` may be left out beside `previous_response_id`).
RESPONSES_INPUT_TOKENS = json_operation({**_RESPONSES_REQUEST, "required": ["model"]})
_COMPACT = {
    k: _RESPONSE_FIELDS[k] for k in ("model", "input", "instructions", "previous_response_id")
}
RESPONSES_COMPACT = json_operation(
    {**_RESPONSES_REQUEST, "required": ["model"], "properties": _COMPACT}
)
