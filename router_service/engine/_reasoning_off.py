"""A deployment's `reasoning: false`: the reasoning knob is not sent to it.

A caller's reasoning request (OpenAI's `reasoning_effort`, Anthropic's `thinking` with adaptive
thinking's `output_config.effort`, which the Gemini entrance's `thinkingConfig` becomes,
OpenRouter's `reasoning` object and its older `include_reasoning`, Google's
`extra_body.google.thinking_config`) is turned into each deployment's own knob
(router_service/providers/_reasoning.py). A model that does not reason refuses that knob with
a 400 (gpt-4o and gpt-4.1 refuse `reasoning_effort`, Gemini 2.0 models a `thinkingConfig`), so
a group mixing reasoning and non-reasoning models could not serve, or fail over, a caller that
asks for reasoning (Claude Code sends `thinking`).
Such a deployment is marked `reasoning: false`, and these keys are left out of its calls only.
"""

from __future__ import annotations

from typing import Any

import orjson

from clients.switchboard.v1 import chat_pb2
from router_service.providers._reasoning import without_claude_effort
from router_service.providers._reasoning_object import (
    GOOGLE_EXTRA,
    OPENROUTER_KEYS,
    google_thinking,
)

# The request keys that ask for reasoning (OpenRouter's `reasoning` object and its older
# `include_reasoning` too: their exclusion is the engine's, read from the caller's params);
# `output_config` only for its `effort`.
_KNOBS = ("reasoning_effort", "thinking", *OPENROUTER_KEYS)


def _without_knobs(extra: dict[str, Any]) -> bool:
    """Drop the reasoning keys from `extra`; whether any was there."""
    config = extra.get("output_config")
    had_effort = isinstance(config, dict) and "effort" in config
    dropped = [extra.pop(key) for key in _KNOBS if key in extra]
    without_claude_effort(extra)
    had_google = _without_google_thinking(extra)  # whatever else was there
    return bool(dropped) or had_effort or had_google


def _without_google_thinking(extra: dict[str, Any]) -> bool:
    """Drop Google's `extra_body.google.thinking_config` (and what it leaves empty)."""
    if google_thinking(extra) is None:
        return False
    outer = dict(extra[GOOGLE_EXTRA])
    google = {k: v for k, v in outer["google"].items() if k != "thinking_config"}
    outer = {k: v for k, v in outer.items() if k != "google"} | (
        {"google": google} if google else {}
    )
    if outer:
        extra[GOOGLE_EXTRA] = outer
    else:
        del extra[GOOGLE_EXTRA]
    return True


def without_reasoning(params: chat_pb2.ChatParams) -> chat_pb2.ChatParams:
    """`params` without the reasoning knob; `params` itself when it carries none (or extras that
    are not a JSON object, which the adapter refuses as it would anyway)."""
    if not params.extra_json:
        return params
    try:
        extra = orjson.loads(params.extra_json)
    except orjson.JSONDecodeError:
        return params
    if not isinstance(extra, dict) or not _without_knobs(extra):
        return params
    out = chat_pb2.ChatParams()
    out.CopyFrom(params)
    out.extra_json = orjson.dumps(extra).decode() if extra else ""
    return out
