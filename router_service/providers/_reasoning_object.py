"""OpenRouter's unified `reasoning` object, the reasoning knob's third way to ask
(https://openrouter.ai/docs/guides/best-practices/reasoning-tokens), which apps written against
OpenRouter send (SillyTavern, Open WebUI, agent frameworks):

    "reasoning": {"effort": "high"}        an effort (xhigh, high, medium, low, minimal, none)
    "reasoning": {"max_tokens": 2000}      a budget in tokens (not both)
    "reasoning": {"enabled": true}         reasoning at the provider's default
    "reasoning": {"exclude": true}         the model reasons; the caller does not see it

and the older top-level `include_reasoning` (false: `exclude`). `enabled: false`, `effort:
"none"` and `max_tokens: 0` turn reasoning off. The knob (_reasoning.py) reads it after
`thinking` and `reasoning_effort`, which win when sent beside it; neither key reaches an
upstream raw but an OpenRouter deployment's, which takes the object natively (`for_openai`).
`exclude` is the engine's (engine/_reasoning_hidden.py). `validated` is the router's check of
a request (a 400 naming the field); `unified` reads one already checked.

Google's OpenAI-compatible endpoint (https://ai.google.dev/gemini-api/docs/openai) takes its own
thinking in an extra its docs have callers copy, with the openai SDK
`extra_body={"extra_body": {"google": {"thinking_config": {...}}}}`, so the body holds

    "extra_body": {"google": {"thinking_config": {"thinking_budget": 800,
                                                   "include_thoughts": true}}}

read here as one more way to ask, after OpenRouter's object (which wins beside it):
`thinking_budget` N a budget (0 `none`, -1 the model's own dynamic thinking: `default`),
`thinking_level` (Gemini 3: minimal, low, medium, high) that effort, `include_thoughts: false`
`exclude`, `include_thoughts: true` alone `default`. `extra_body` (its `cached_content`, a
cache only Google's API knows, too) reaches only Google's endpoints (`is_google_openai`: the
Gemini API's and Vertex AI's, which takes the same extra).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from clients.switchboard.v1 import chat_pb2
from router_service.errors import InvalidRequestError

__all__ = [
    "GOOGLE_EXTRA",
    "OPENROUTER_KEYS",
    "Unified",
    "asks_by_extra",
    "google_thinking",
    "hides_reasoning",
    "is_google_openai",
    "is_openai_api",
    "is_openrouter",
    "unified",
    "validated",
]

OPENROUTER_KEYS = ("reasoning", "include_reasoning")
GOOGLE_EXTRA = "extra_body"
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_LEVELS = ("minimal", "low", "medium", "high")
_HOST = "openrouter.ai"
_OPENAI_HOST = "api.openai.com"
_GOOGLE_HOST = "generativelanguage.googleapis.com"
# Vertex AI's OpenAI-compatible endpoint, global or regional (us-central1-aiplatform…):
# https://cloud.google.com/vertex-ai/generative-ai/docs/start/openai
_VERTEX_HOST = "aiplatform.googleapis.com"
_VERTEX_OPENAPI = re.compile(r"/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/endpoints/openapi/?$")
_GOOGLE_PATH = "extra_body.google.thinking_config"


@dataclass(frozen=True)
class Unified:
    """OpenRouter's object, read: `effort` (an effort of `_EFFORTS`; off is `none`), `budget`
    (`max_tokens`), `default` (`enabled: true` alone: the provider's default reasoning);
    `exclude`: the answer's reasoning is not shown."""

    effort: str | None = None
    budget: int | None = None
    default: bool = False
    exclude: bool = False


def is_openrouter(base_url: str) -> bool:
    """Whether a deployment's `base_url` is OpenRouter's API (it takes the object itself)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host == _HOST or host.endswith(f".{_HOST}")


def is_openai_api(base_url: str) -> bool:
    """Whether a deployment's `base_url` is OpenAI's own API: api.openai.com, or one of its data
    residency hosts (eu.api.openai.com…)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host == _OPENAI_HOST or host.endswith(f".{_OPENAI_HOST}")


def is_google_openai(base_url: str) -> bool:
    """Whether a deployment's `base_url` is one of Google's OpenAI-compatible endpoints: the
    Gemini API's (…/openai) or Vertex AI's (…/projects/P/locations/L/endpoints/openapi)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host == _GOOGLE_HOST:
        return "/openai" in parts.path
    at_vertex = host == _VERTEX_HOST or host.endswith(f"-{_VERTEX_HOST}")
    return at_vertex and _VERTEX_OPENAPI.match(parts.path) is not None


def asks_by_extra(body: Mapping[str, Any]) -> bool:
    """Whether `body` may ask for reasoning by OpenRouter's object or Google's extra."""
    return "reasoning" in body or GOOGLE_EXTRA in body


def google_thinking(body: Mapping[str, Any]) -> Any:
    """Google's `extra_body.google.thinking_config` as sent (None: not there)."""
    extra = body.get(GOOGLE_EXTRA)
    google = extra.get("google") if isinstance(extra, dict) else None
    return google.get("thinking_config") if isinstance(google, dict) else None


def unified(body: Mapping[str, Any]) -> Unified | None:
    """The object in an OpenAI-dialect `body` (None: neither key); one `validated` took."""
    try:
        return validated(body)
    except InvalidRequestError:
        return None


def validated(body: Mapping[str, Any]) -> Unified | None:
    """The object in `body` (else Google's extra), checked: an InvalidRequestError naming the
    field when malformed."""
    google = _google(body)
    return _openrouter(body) or google


def _google(body: Mapping[str, Any]) -> Unified | None:
    extra = body.get(GOOGLE_EXTRA)
    google = extra.get("google") if isinstance(extra, dict) else None
    if google is not None and not isinstance(google, dict):
        raise _invalid("extra_body.google", "must be an object (Google's: thinking_config…)")
    config = google_thinking(body)
    if config is None:
        return None
    if not isinstance(config, dict):
        raise _invalid(_GOOGLE_PATH, "must be an object (thinking_budget, thinking_level…)")
    include = config.get("include_thoughts")
    if include is not None and not isinstance(include, bool):
        raise _invalid(f"{_GOOGLE_PATH}.include_thoughts", "must be true or false")
    level, budget = config.get("thinking_level"), config.get("thinking_budget")
    if level is not None and budget is not None:
        raise _invalid(_GOOGLE_PATH, "set thinking_budget or thinking_level, not both")
    exclude = include is False
    if level is not None:
        if not isinstance(level, str) or level.lower() not in _LEVELS:
            raise _invalid(f"{_GOOGLE_PATH}.thinking_level", f"must be one of {', '.join(_LEVELS)}")
        return Unified(effort=level.lower(), exclude=exclude)
    if budget is None:
        return Unified(default=include is True, exclude=exclude)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < -1:
        raise _invalid(f"{_GOOGLE_PATH}.thinking_budget", "must be a whole number, -1 or more")
    if budget == 0:
        return Unified(effort="none", exclude=exclude)
    return Unified(budget=budget if budget > 0 else None, default=budget < 0, exclude=exclude)


def _openrouter(body: Mapping[str, Any]) -> Unified | None:
    value, include = body.get("reasoning"), body.get("include_reasoning")
    if include is not None and not isinstance(include, bool):
        raise _invalid("include_reasoning", "must be true or false")
    if value is None:
        return None if include is None else Unified(exclude=include is False)
    if not isinstance(value, dict):
        raise _invalid("reasoning", "must be an object (OpenRouter's: effort, max_tokens…)")
    for key in ("enabled", "exclude"):
        if value.get(key) is not None and not isinstance(value[key], bool):
            raise _invalid(f"reasoning.{key}", "must be true or false")
    exclude = value.get("exclude") is True or include is False
    effort, budget = _effort(value.get("effort")), _budget(value.get("max_tokens"))
    if effort is not None and budget is not None:
        raise _invalid("reasoning", "set effort or max_tokens, not both")
    if value.get("enabled") is False or budget == 0:
        return Unified(effort="none", exclude=exclude)
    default = value.get("enabled") is True and effort is None and budget is None
    return Unified(effort, budget, default, exclude)


def _effort(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in _EFFORTS:
        raise _invalid("reasoning.effort", f"must be one of {', '.join(_EFFORTS)}")
    return value


def _budget(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid("reasoning.max_tokens", "must be a whole number of tokens, 0 or more")
    return value


def _invalid(param: str, rule: str) -> InvalidRequestError:
    return InvalidRequestError(f"`{param}` {rule}.", param=param)


def hides_reasoning(params: chat_pb2.ChatParams) -> bool:
    """Whether the caller asked not to see the answer's reasoning (`reasoning.exclude`,
    `include_reasoning: false`, Google's `include_thoughts: false`). Extras without the words
    (the common case) are not parsed."""
    if "reasoning" not in params.extra_json and "include_thoughts" not in params.extra_json:
        return False
    try:
        extra = orjson.loads(params.extra_json)
    except orjson.JSONDecodeError:
        return False
    asked = unified(extra) if isinstance(extra, dict) else None
    return asked is not None and asked.exclude
