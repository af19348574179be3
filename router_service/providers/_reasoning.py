"""One reasoning knob across providers: OpenAI's `reasoning_effort` ⇄ Anthropic's `thinking` ⇄
Gemini's `generationConfig.thinkingConfig` ⇄ Cohere's `thinking` (⇐ OpenRouter's `reasoning`).

A group may mix kinds, so a caller's reasoning request must mean the same at every deployment
that may answer it, failover included. Every adapter starts from the OpenAI-dialect body the codec
writes, where the knob is `reasoning_effort` (a typed OpenAI field), `thinking` (a caller's
extra: Anthropic's shape, from the `/v1/messages` entrance or sent on purpose) or `reasoning`
(OpenRouter's object, _reasoning_object.py, read after the other two); this module and
_reasoning_budgets.py (Gemini, Cohere) turn them into the upstream's own knob, and nothing else
does.

Rules:
- A provider's native knob, when the caller sent it, wins at that provider (it was sent on
  purpose): `thinking` at Claude, `generationConfig.thinkingConfig` at Gemini,
  `reasoning_effort` at OpenAI-format kinds. Anthropic's `thinking` never reaches a non-Claude
  upstream raw: it becomes that upstream's knob.
- Anthropic (https://docs.claude.com/en/docs/build-with-claude/extended-thinking): a budget is at
  least 1024 and below `max_tokens`; while thinking is on, `temperature`, `top_k` and a `top_p`
  under 0.95 are refused, and so is a forced tool choice. When the budget does not fit,
  `max_tokens` is raised to budget + the caller's `max_tokens` (the answer keeps the room the
  caller gave it); sampling fields are dropped; an effort does not turn thinking on when the
  caller forced a tool, or goes on from a tool call given back without its thinking blocks.
  Claude 4.6 and later take adaptive thinking with `output_config.effort` instead of budgets,
  and 4.7 and later refuse budgets (`claude_mode`, by model name: the docs leave no other way
  to know).
- Gemini (https://ai.google.dev/gemini-api/docs/thinking): `thinkingBudget`, which Gemini 2.5 and
  Gemini 3 both take ("thinkingBudget is accepted for backwards compatibility" on Gemini 3, which
  prefers `thinkingLevel`), so no model-name test; 0 turns thinking off (Pro models refuse 0),
  -1 lets the model decide.
- Cohere (https://docs.cohere.com/v2/docs/reasoning): `thinking: {type, token_budget}`.
- OpenRouter's object: its effort is an effort; its `max_tokens` a budget where budgets are taken
  (raised to Claude's least, 1024, at Claude and Cohere), the effort under it where efforts
  are; `enabled: true` alone the provider's default (`default` mode: `medium` at OpenAI, as
  OpenRouter, gpt-5.1's default being `none`; the medium budget or adaptive thinking at Claude,
  `includeThoughts` without a budget at Gemini).
- Claude's knob is _reasoning_claude.py's (the Messages API, Vertex's and Bedrock's).
- Bedrock: Claude models take Anthropic's `thinking` in `additionalModelRequestFields`; other
  models' reasoning fields differ per model family and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router_service.providers._reasoning_efforts import fitted_effort
from router_service.providers._reasoning_object import (
    GOOGLE_EXTRA,
    OPENROUTER_KEYS,
    asks_by_extra,
    google_thinking,
    unified,
)

JsonObject = dict[str, Any]

# reasoning_effort → thinking budget (tokens). LiteLLM's defaults (litellm/constants.py
# DEFAULT_REASONING_EFFORT_{MINIMAL,LOW,MEDIUM,HIGH,XHIGH}_THINKING_BUDGET: 128, 1024, 2048,
# 4096, 8192), with `none` as LiteLLM's DISABLE budget (0). A budget under Anthropic's minimum
# (1024) means thinking off at Claude and Cohere; Gemini takes 128 (2.5 Pro's own minimum).
BUDGET_BY_EFFORT: dict[str, int] = {
    "none": 0,
    "minimal": 128,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
}
CLAUDE_MIN_BUDGET = 1024
# Claude's `output_config.effort` → reasoning_effort (its `max` is beyond high).
EFFORT_BY_CLAUDE_EFFORT = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}
# reasoning_effort → Claude's `output_config.effort`, for the models that take adaptive thinking
# (low, medium, high are the levels every such model takes; `max` is not, so xhigh is high).
CLAUDE_EFFORT: dict[str, str] = {
    "none": "low",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}


@dataclass(frozen=True)
class Thinking:
    """A reasoning request, whichever knob said it: `mode` is enabled, adaptive, disabled or
    default (OpenRouter's `enabled: true` alone); `budget` the tokens thinking may take (enabled
    only); `exact`: a budget named in tokens by OpenRouter's `max_tokens`, raised to a
    provider's least rather than turning thinking off."""

    mode: str
    budget: int | None = None
    exact: bool = False


def effort_of(body: Mapping[str, Any]) -> str | None:
    """The caller's `reasoning_effort`, when it is one this module knows; else the effort of
    OpenRouter's object (its `enabled: false` is `none`)."""
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort in BUDGET_BY_EFFORT:
        return effort
    if "reasoning_effort" in body or not asks_by_extra(body):
        return None
    asked = unified(body)
    return None if asked is None else asked.effort


def anthropic_thinking(value: Any, output_config: Any = None) -> Thinking | None:
    """Anthropic's `thinking` object, read; None when it is not one. Adaptive thinking's
    `output_config.effort`, when given, stands for that effort's budget."""
    if not isinstance(value, dict):
        return None
    mode, budget = value.get("type"), value.get("budget_tokens")
    if mode == "enabled" and isinstance(budget, int) and not isinstance(budget, bool):
        return Thinking("enabled", budget)
    if mode == "adaptive":
        ours = claude_effort(output_config)
        return Thinking("adaptive", BUDGET_BY_EFFORT[ours] if ours else None)
    if mode == "disabled":
        return Thinking("disabled")
    return None


def claude_effort(output_config: Any) -> str | None:
    """Adaptive thinking's `output_config.effort` as a `reasoning_effort`, when it is one."""
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    return EFFORT_BY_CLAUDE_EFFORT.get(effort) if isinstance(effort, str) else None


def without_claude_effort(out: JsonObject) -> None:
    """Drop Claude's `output_config.effort` (read with `thinking`) from a non-Claude body, and
    `output_config` with it when nothing else is left in it."""
    own = out.get("output_config")
    if isinstance(own, dict) and "effort" in own:
        rest = {k: v for k, v in own.items() if k != "effort"}
        if rest:
            out["output_config"] = rest
        else:
            del out["output_config"]


def from_effort(effort: str) -> Thinking:
    budget = BUDGET_BY_EFFORT[effort]
    return Thinking("enabled", budget) if budget > 0 else Thinking("disabled")


def asked(body: Mapping[str, Any]) -> Thinking | None:
    """The reasoning asked for, for a provider whose own knob the caller did not set:
    Anthropic's `thinking` (sent on purpose) before `reasoning_effort`, before OpenRouter's
    `reasoning` (its effort through `effort_of`)."""
    thinking = anthropic_thinking(body.get("thinking"), body.get("output_config"))
    if thinking is not None:
        return thinking
    effort = effort_of(body)
    if effort is not None:
        return from_effort(effort)
    return openrouter_thinking(body)


def openrouter_thinking(body: Mapping[str, Any]) -> Thinking | None:
    """OpenRouter's `max_tokens` (an exact budget) or `enabled: true` alone (`default`)."""
    if not asks_by_extra(body) or "reasoning_effort" in body:
        return None
    ask = unified(body)
    if ask is not None and ask.budget is not None:
        return Thinking("enabled", ask.budget, exact=True)
    return Thinking("default") if ask is not None and ask.default else None


def without_openrouter(out: JsonObject, *, google: bool = False) -> None:
    """Drop OpenRouter's keys and Google's `extra_body` (but at Google's endpoint: `google`)."""
    for key in OPENROUTER_KEYS:
        out.pop(key, None)
    if not google:
        out.pop(GOOGLE_EXTRA, None)


# --- OpenAI-format kinds (openai, azure, cloudflare) ------------------------------------------

# The efforts every OpenAI reasoning model takes (`none`, `minimal` and `xhigh` are each refused
# by some): the only ones a thinking budget is turned into.
_EVERYWHERE_EFFORTS = ("low", "medium", "high")


def effort_for_budget(budget: int) -> str:
    """The effort whose budget is the largest not above `budget` (low at least, high at most)."""
    fitting = [e for e in _EVERYWHERE_EFFORTS if BUDGET_BY_EFFORT[e] <= budget]
    return fitting[-1] if fitting else "low"


def for_openai(
    body: JsonObject, model: str, *, openrouter: bool = False, google: bool = False
) -> None:
    """`thinking` becomes `reasoning_effort` by budget (unless the caller set one: the native
    knob wins); disabled and adaptive send none (the model's default). OpenRouter's object, after
    those two, becomes its effort, or the effort under its `max_tokens` (`enabled`: `medium`);
    an OpenRouter deployment (`openrouter`) takes it as it is, Google's endpoint (`google`)
    Google's `extra_body` (no effort beside it: Google refuses both). The effort sent is one
    `model` (the deployment's base model) takes (`fitted_effort`). A plain body has no object
    nor extra (`extra`)."""
    thinking = anthropic_thinking(body.pop("thinking", None), body.get("output_config"))
    without_claude_effort(body)
    extra = asks_by_extra(body)
    at_google = extra and google and google_thinking(body) is not None
    native = at_google or (openrouter and any(key in body for key in OPENROUTER_KEYS))
    if extra and thinking is None and not native and "reasoning_effort" not in body:
        effort = effort_of(body)
        if effort is not None:  # OpenRouter's effort, as named (`none` too)
            body["reasoning_effort"] = effort
        thinking = openrouter_thinking(body)
    if not openrouter and (extra or "include_reasoning" in body):
        without_openrouter(body, google=google)
    elif openrouter and not google:
        body.pop(GOOGLE_EXTRA, None)
    if thinking is not None and "reasoning_effort" not in body and not at_google:
        if thinking.mode != "disabled" and thinking.budget is not None:
            body["reasoning_effort"] = effort_for_budget(thinking.budget)
        elif thinking.mode == "default":  # OpenRouter's `enabled: true`: its `medium` (gpt-5.1's
            body["reasoning_effort"] = "medium"  # own default, `none`, would not reason at all)
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):  # the one the model takes (_reasoning_efforts.py)
        body["reasoning_effort"] = fitted_effort(effort, model)
