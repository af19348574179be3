"""The request's fields a Response object repeats (`tools`, `tool_choice`, `text`…): its echo,
read once, and refused when it could not be written where it goes."""

from __future__ import annotations

from typing import Any

import orjson

from clients.codec._json import dump_json, invalid_value

__all__ = ["echo_of"]

_ECHOED = (
    *("instructions", "max_output_tokens", "reasoning", "user", "safety_identifier"),
    *("prompt_cache_key", "temperature", "top_p", "parallel_tool_calls", "previous_response_id"),
    "max_tool_calls",
)
# OpenAI's truncation strategies; `disabled` its default (a context overflow is the upstream's
# 400); `auto` is the router's (`ResponsesRequest.routing`), and the Response says what was asked.
_TRUNCATION = ("auto", "disabled")


def echo_of(body: dict[str, Any], store: bool) -> dict[str, Any]:
    """The Response's repeated fields. Its deepest place is a stream event's `response` (the
    Response one level down): a field nested deeper than JSON is written there (a schema the
    upstream body holds one level higher) is a 400 naming it now, not a stream cut once the
    answer is in or a 500 as the Response is stored."""
    echo: dict[str, Any] = {
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice") or "auto",
        "metadata": body.get("metadata") or {},
        "text": _text(body.get("text")),
        "parallel_tool_calls": True,
        "temperature": None,
        "top_p": None,
        "truncation": _truncation(body.get("truncation")),
    }
    for key in _ECHOED:
        if body.get(key) is not None:
            echo[key] = body[key]
    echo["store"] = store
    try:  # the whole echo at once, the usual case; the field at fault named when it fails
        orjson.dumps({"response": echo})
    except orjson.JSONEncodeError:
        for key, value in echo.items():
            dump_json({"response": {key: value}}, key)
    return echo


def _text(value: Any) -> Any:
    """The `text` echoed: with its `format` (plain text unless one was asked) as OpenAI's is,
    also when only a `verbosity` was sent; a value not an object stays as sent (the request's
    own check names it)."""
    if not value:
        return {"format": {"type": "text"}}
    if isinstance(value, dict) and value.get("format") is None:
        return {**value, "format": {"type": "text"}}
    return value


def _truncation(value: Any) -> str:
    if value is None:
        return "disabled"
    if value not in _TRUNCATION:
        invalid_value("truncation", value, _TRUNCATION)
    return str(value)
