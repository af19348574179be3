"""The reasoning knob (_reasoning.py) at the budget-taking kinds besides Claude: Gemini's
`generationConfig.thinkingConfig` (https://ai.google.dev/gemini-api/docs/thinking) and Cohere's
`thinking: {type, token_budget}` (https://docs.cohere.com/v2/docs/reasoning).

Gemini takes `thinkingBudget` on 2.5 and 3 alike ("thinkingBudget is accepted for backwards
compatibility" on Gemini 3, which prefers `thinkingLevel`), so no model-name test but its range;
0 turns thinking off (Pro models refuse 0), -1 lets the model decide, and none (`includeThoughts`
alone) leaves the model's own default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec.gemini import THINKING_BUDGETS
from router_service.providers._reasoning import (
    BUDGET_BY_EFFORT,
    CLAUDE_MIN_BUDGET,
    JsonObject,
    anthropic_thinking,
    asked,
    claude_effort,
    effort_of,
    without_claude_effort,
    without_openrouter,
)

__all__ = ["cohere_thinking", "gemini_budget", "gemini_fitted", "gemini_thinking_config"]


# Gemini's thinking budgets by model name (https://ai.google.dev/gemini-api/docs/thinking): a
# budget out of its model's range is refused (a 400), so one asked for is brought into it. Name
# part → (least budget while thinking, most, whether 0 turns thinking off); the first that the
# model's name holds applies (Flash-Lite before Flash). A model named otherwise gets the budget.
_GEMINI_BUDGET_RANGES = (
    ("2.5-flash-lite", 512, 24576, True),
    ("2.5-flash", 1, 24576, True),
    ("2.5-pro", 128, 32768, False),
)


def gemini_thinking_config(
    out: JsonObject, body: Mapping[str, Any], model: str = ""
) -> JsonObject | None:
    """generationConfig.thinkingConfig for the effort or Anthropic's `thinking`, both taken out
    of the Gemini body `out` (the caller's own thinkingConfig wins: the mapping keeps it), in
    the range `model` takes. Reasoning asked for (a budget above 0, or dynamic) is reasoning
    the caller sees: `includeThoughts` too, so Gemini sends its thought summaries. An effort
    (adaptive thinking's too) is Google's budget for it, whichever knob said it; OpenRouter's
    `enabled: true` alone, the thoughts without a budget (the model's own default)."""
    out.pop("thinking", None)
    without_claude_effort(out)
    without_openrouter(out)
    thinking = asked(body)
    if thinking is None:
        return None
    if thinking.mode == "default":
        return {"includeThoughts": True}
    effort = effort_of(body)
    if thinking.mode == "adaptive":
        effort = claude_effort(body.get("output_config"))
    elif anthropic_thinking(body.get("thinking")) is not None:
        effort = None  # Anthropic's own budget (or disabled), sent on purpose
    if effort is not None:
        budget = gemini_budget(effort)
    elif thinking.mode == "adaptive":
        budget = -1  # dynamic: the model decides
    else:
        budget = max(thinking.budget or 0, 0)
    fitted = {"thinkingBudget": budget if budget < 0 else gemini_fitted(budget, model)}
    return fitted if budget == 0 else {**fitted, "includeThoughts": True}


def gemini_fitted(budget: int, model: str) -> int:
    """`budget` in `model`'s range: a model that cannot turn thinking off (2.5 Pro) thinks the
    least it can for 0 (`none`, `disabled`); one past its most, its most (Claude Code's 31999
    at 2.5 Flash: 24576)."""
    for name, least, most, can_stop in _GEMINI_BUDGET_RANGES:
        if name in model:
            return 0 if budget == 0 and can_stop else min(max(budget, least), most)
    return budget


def gemini_budget(effort: str) -> int:
    """An effort's thinking budget at Gemini: Google's own (its OpenAI-compatible endpoint's,
    the table the Gemini entrance reads the other way), the general one for the efforts Google's
    table lacks (minimal), never past Google's `high` (xhigh)."""
    if effort == "xhigh":  # beyond Google's table: its most
        return THINKING_BUDGETS["high"]
    return THINKING_BUDGETS.get(effort, BUDGET_BY_EFFORT[effort])


def cohere_thinking(out: JsonObject, body: Mapping[str, Any]) -> None:
    """Cohere's `thinking` in the Cohere body `out`: the caller's own when it is Cohere's shape
    (`token_budget`), else the one asked (Anthropic's `thinking` or the effort)."""
    native = out.pop("thinking", None)
    without_claude_effort(out)
    without_openrouter(out)
    cohere_shape = isinstance(native, dict) and "budget_tokens" not in native
    if cohere_shape and native.get("type") in ("enabled", "disabled"):
        out["thinking"] = dict(native)
        return
    thinking = asked(body)
    if thinking is None:
        return
    if thinking.mode == "default" or (thinking.mode == "adaptive" and thinking.budget is None):
        out["thinking"] = {"type": "enabled"}
    elif thinking.exact and thinking.budget:  # OpenRouter's max_tokens: Claude's least at least
        out["thinking"] = {
            "type": "enabled",
            "token_budget": max(thinking.budget, CLAUDE_MIN_BUDGET),
        }
    elif thinking.budget is None or thinking.budget < CLAUDE_MIN_BUDGET:
        out["thinking"] = {"type": "disabled"}
    else:
        out["thinking"] = {"type": "enabled", "token_budget": thinking.budget}
