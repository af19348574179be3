"""generationConfig.thinkingConfig → OpenAI's `reasoning_effort`: the one word for reasoning every
kind of deployment may take (the router's Gemini provider writes it back as a thinkingBudget,
`THINKING_BUDGETS`; an OpenAI-dialect reasoning model takes it as it is).

A budget becomes the least effort whose budget holds it (8 → `low`, 1024 → `low`, 1025 →
`medium`; over the `high` budget, `high`), so a Gemini deployment thinks with at least the
budget asked; 0 is `none` (thinking off); -1 (dynamic, Gemini's default) sets nothing. A
thinkingLevel is the effort of its name. `includeThoughts: true` with neither (or with -1) is
OpenRouter's `reasoning: {"enabled": true}`, reasoning at each deployment's default: a Gemini
deployment is asked for its thoughts with no budget (dynamic). `includeThoughts` says whether
the answer's reasoning
(a Gemini deployment's thoughts, a Claude's thinking, an OpenAI-dialect `reasoning_content`)
comes back as `thought: true` parts (`include_thoughts`): only when it is true, as Gemini's.
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import (
    at,
    expect_bool,
    expect_int32,
    expect_object,
    expect_str,
    invalid_value,
)
from clients.codec.gemini._tables import THINKING_BUDGETS
from clients.errors import InvalidRequestError

__all__ = ["include_thoughts", "reasoning_knob"]

_PATH = "generationConfig.thinkingConfig"
_KEYS = frozenset({"thinkingBudget", "thinkingLevel", "includeThoughts"})
_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
_DYNAMIC = -1


def reasoning_knob(value: Any) -> dict[str, Any]:
    """`{"reasoning_effort": …}` for a thinkingConfig, `{"reasoning": {"enabled": true}}` for
    its `includeThoughts: true` alone (`{}` when it leaves thinking as it is)."""
    config = expect_object(value, _PATH)
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        where = at(_PATH, unknown[0])
        message = f"{where}: not supported (supported: {', '.join(sorted(_KEYS))})"
        raise InvalidRequestError(message, where)
    thoughts = config.get("includeThoughts")
    if thoughts is not None:
        expect_bool(thoughts, at(_PATH, "includeThoughts"))
    effort = _effort(config)
    if not effort and thoughts is True:  # OpenRouter's: reasoning at each deployment's default
        return {"reasoning": {"enabled": True}}
    return effort


def _effort(config: dict[str, Any]) -> dict[str, Any]:
    budget, level = config.get("thinkingBudget"), config.get("thinkingLevel")
    if budget is not None and level is not None:
        message = f"{_PATH}: set thinkingBudget or thinkingLevel, not both"
        raise InvalidRequestError(message, _PATH)
    if level is not None:
        return _level(expect_str(level, at(_PATH, "thinkingLevel")))
    if budget is None:
        return {}
    where = at(_PATH, "thinkingBudget")
    if expect_int32(budget, where) == _DYNAMIC:
        return {}
    if budget < 0:
        raise InvalidRequestError(f"{where}: must be -1 (dynamic), 0 (off) or more", where)
    held = [effort for effort, most in THINKING_BUDGETS.items() if budget <= most]
    return {"reasoning_effort": held[0] if held else "high"}


def include_thoughts(body: Any) -> bool:
    """Whether a generateContent body asks for the answer's thoughts (a body its codec took,
    so its thinkingConfig is well formed)."""
    config = body.get("generationConfig") if isinstance(body, dict) else None
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    if not isinstance(thinking, dict):
        return False
    return thinking.get("includeThoughts") is True


def _level(level: str) -> dict[str, Any]:
    if level == "THINKING_LEVEL_UNSPECIFIED":
        return {}
    if level not in _LEVELS:
        invalid_value(at(_PATH, "thinkingLevel"), level, _LEVELS)
    return {"reasoning_effort": level.lower()}
