"""Anthropic's Messages API words that both directions share: the router's Anthropic provider
(OpenAI dialect → Anthropic upstream) and the edge's `/v1/messages` (Anthropic caller → OpenAI
dialect) read the same tables, each the other way round.

Followed:
- Stop reasons: https://docs.claude.com/en/api/messages (`stop_reason`)
- Error types and their HTTP statuses: https://docs.claude.com/en/api/errors
- A tool_result's `is_error`: https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use
"""

from __future__ import annotations

from typing import Any

# error.type → the HTTP status Anthropic sends it with.
STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# An HTTP status → Anthropic's error type: the table above the other way round, with the
# statuses only we send said in its nearest word (503, an unavailable service: overloaded).
ERROR_TYPE_BY_STATUS = {status: kind for kind, status in STATUS_BY_ERROR_TYPE.items()} | {
    409: "invalid_request_error",
    422: "invalid_request_error",
    503: "overloaded_error",
}
OVERLOADED_STATUS = STATUS_BY_ERROR_TYPE["overloaded_error"]
# A failed tool result: a tool_result block's `is_error: true`, carried as it is on the OpenAI
# `tool` message (OpenAI has no word for it), where each provider says it in its own words.
TOOL_ERROR_KEY = "is_error"

# Anthropic's stop_reason → OpenAI's finish_reason.
FINISH_BY_STOP_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# OpenAI's finish_reason → Anthropic's stop_reason (which stop sequence ended an answer, OpenAI
# does not say: a "stop" is an end_turn).
STOP_REASON_BY_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status: api_error for any other 5xx."""
    known = ERROR_TYPE_BY_STATUS.get(status)
    if known is not None:
        return known
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error object, as its responses and its stream's `error` event carry it."""
    return {"type": "error", "error": {"type": kind, "message": message}}
