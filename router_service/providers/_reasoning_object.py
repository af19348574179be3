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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from router_service.errors import InvalidRequestError

__all__ = ["OPENROUTER_KEYS", "Unified", "is_openrouter", "unified", "validated"]

OPENROUTER_KEYS = ("reasoning", "include_reasoning")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_HOST = "openrouter.ai"


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


def unified(body: Mapping[str, Any]) -> Unified | None:
    """The object in an OpenAI-dialect `body` (None: neither key); one `validated` took."""
    try:
        return validated(body)
    except InvalidRequestError:
        return None


def validated(body: Mapping[str, Any]) -> Unified | None:
    """The object in `body`, checked: an InvalidRequestError naming the field when malformed."""
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
