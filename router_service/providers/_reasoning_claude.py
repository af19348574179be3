"""The reasoning knob (_reasoning.py) at Claude: Anthropic's Messages API, Claude on Vertex AI
(the same bodies) and on Bedrock (`additionalModelRequestFields`). Anthropic's rules
(https://docs.claude.com/en/docs/build-with-claude/extended-thinking) are kept for the caller:
how a model thinks by its name (`claude_mode`), the budget under `max_tokens`, the sampling
fields refused while thinking."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router_service.providers._reasoning import (
    BUDGET_BY_EFFORT,
    CLAUDE_EFFORT,
    CLAUDE_MIN_BUDGET,
    JsonObject,
    Thinking,
    effort_for_budget,
    effort_of,
    openrouter_thinking,
)
from router_service.providers._reasoning_object import unified

__all__ = ["claude_mode", "claude_output_limit", "for_bedrock", "for_claude", "is_bedrock_claude"]

# What the answer may take besides thinking when neither the caller nor the config said
# (Bedrock's Converse has no default of ours; LiteLLM's DEFAULT_MAX_TOKENS).
DEFAULT_ANSWER_TOKENS = 4096
_FORBIDDEN_WHILE_THINKING = ("temperature", "top_k")
_MIN_TOP_P_WHILE_THINKING = 0.95


def _forced_tool(choice: Any) -> bool:
    """A tool choice that forces a tool: Anthropic's `{"type": "any"|"tool"}`, Converse's
    `{"any": {}}` / `{"tool": {...}}`."""
    if not isinstance(choice, dict):
        return False
    return choice.get("type") in ("any", "tool") or "any" in choice or "tool" in choice


# The first version in a Claude model name, wherever the platform puts it: claude-opus-4-7,
# claude-sonnet-4-5@20250929 (Vertex), us.anthropic.claude-opus-4-6-v1 (Bedrock),
# claude-3-7-sonnet-20250219; a date after the version is not a minor version.
# Claude 2 and Claude Instant write a `v` before it (claude-v2, anthropic.claude-instant-v1).
_CLAUDE_VERSION = re.compile(r"claude-(?:[a-z]+-)?v?(\d+)(?:-(\d{1,2}))?(?=$|[-@.:_])")
# The first Claude with extended thinking: 3.7 Sonnet; older ones refuse `thinking` (a 400).
_FIRST_THINKING_CLAUDE = (3, 7)


# The first Claude with structured outputs (`output_config.format`, Converse's `outputConfig`):
# the 4.5 models (https://platform.claude.com/docs/en/build-with-claude/structured-outputs);
# older ones refuse it with a 400.
_FIRST_STRUCTURED_CLAUDE = (4, 5)


# The first Claude with tool use: the Claude 3 family. Claude 2 and Claude Instant (end of life)
# take no tools: Anthropic's tool use docs start at Claude 3, and Bedrock's Converse lists no
# tool use for them (https://docs.aws.amazon.com/bedrock/latest/userguide/conversation-inference-supported-models-features.html).
_FIRST_TOOL_CLAUDE = 3


def takes_tools(model: str) -> bool:
    """Whether a Claude model takes tools, by its name (one without a version is sent them)."""
    found = _CLAUDE_VERSION.search(model)
    return found is None or int(found.group(1)) >= _FIRST_TOOL_CLAUDE


def takes_output_format(model: str) -> bool:
    """Whether a Claude model takes a structured output, by its name (one without a version,
    an alias or an application inference profile, is sent it: its 400 would say why)."""
    found = _CLAUDE_VERSION.search(model)
    if found is None:
        return True
    return (int(found.group(1)), int(found.group(2) or 0)) >= _FIRST_STRUCTURED_CLAUDE


def claude_mode(model: str) -> str:
    """How a Claude model takes thinking, by its name: the docs force it
    (https://docs.claude.com/en/docs/build-with-claude/adaptive-thinking): Opus 4.7, Mythos and
    later take only `adaptive` (with `output_config.effort`), refusing `enabled` and `disabled`;
    the 4.6 models take `adaptive` (budgets deprecated); 3.7 up to 4.5 only `enabled` budgets;
    those before 3.7 (3.5 Sonnet and Haiku, the Claude 3 family, Claude 2) no thinking at all
    (`none`: an effort is dropped for them, as before there was a reasoning knob). A name without
    a version (an alias, an application inference profile) gets budgets."""
    if "mythos" in model:
        return "adaptive_only"
    found = _CLAUDE_VERSION.search(model)
    if found is None:
        return "budget"
    version = (int(found.group(1)), int(found.group(2) or 0))
    if version < _FIRST_THINKING_CLAUDE:
        return "none"
    if version >= (4, 7):
        return "adaptive_only"
    return "adaptive" if version >= (4, 6) else "budget"


def claude_knobs(
    body: Mapping[str, Any], native: Any, tool_choice: Any, model: str
) -> tuple[Any, str | None]:
    """(`thinking`, `output_config.effort`) to send to Claude: the caller's own `thinking` as it
    was; else one from the effort (none when a tool is forced, or when the tool call the
    request goes on from came back without its thinking: Claude refuses both with thinking
    on)."""
    if native is not None:  # as sent, even malformed: Anthropic's 400 then says what is wrong
        return (dict(native) if isinstance(native, dict) else native), None
    if _unsigned_tool_turn(body.get("messages")):
        return None, None
    effort = effort_of(body)
    mode = claude_mode(model)
    if effort is None and mode != "none" and not _forced_tool(tool_choice):
        return _claude_openrouter(body, openrouter_thinking(body), mode)
    if effort is None or mode == "none":
        return None, None
    budget = BUDGET_BY_EFFORT[effort]
    if budget < CLAUDE_MIN_BUDGET and mode != "adaptive_only":
        return {"type": "disabled"}, None
    if _forced_tool(tool_choice):
        return None, None
    if mode == "budget":
        return {"type": "enabled", "budget_tokens": budget}, None
    return _adaptive(mode, effort != "none" and not _hidden(body)), CLAUDE_EFFORT[effort]


def _adaptive(mode: str, shown: bool) -> JsonObject:
    """Adaptive thinking; its text asked for (`display: "summarized"`) where the caller is to
    see it (`shown`) and the model leaves it out unless asked: Opus 4.7 and later, Mythos
    (`adaptive_only`) default to `"omitted"`, the thinking block signature-only
    (https://platform.claude.com/docs/en/about-claude/models/whats-new-claude-4-7), on
    Anthropic's API, Vertex and Bedrock alike. The 4.6 models summarize by default: nothing
    is added for them."""
    if shown and mode == "adaptive_only":
        return {"type": "adaptive", "display": "summarized"}
    return {"type": "adaptive"}


def _hidden(body: Mapping[str, Any]) -> bool:
    """Whether the caller asked not to see the reasoning (`reasoning.exclude`,
    `include_reasoning: false`): the engine takes it out, so it is not asked for."""
    asked = unified(body)
    return asked is not None and asked.exclude


def _unsigned_tool_turn(messages: Any) -> bool:
    """Whether the last assistant turn called tools without its signed thinking blocks (a
    caller that hid the reasoning, `reasoning.exclude`, never had them; others drop them): Claude
    refuses thinking on then ("a final assistant message must start with a thinking block", a
    400), so an effort does not turn it on."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "assistant":
            return bool(message.get("tool_calls")) and not message.get("thinking_blocks")
    return False


def _claude_openrouter(
    body: Mapping[str, Any], thinking: Thinking | None, mode: str
) -> tuple[Any, str | None]:
    """OpenRouter's `max_tokens` (at least Claude's least; by adaptive thinking, the effort
    under it) or `enabled: true` alone (the medium budget; adaptive thinking, no effort)."""
    if thinking is None:
        return None, None
    if mode == "budget":
        budget = thinking.budget if thinking.budget is not None else BUDGET_BY_EFFORT["medium"]
        return {"type": "enabled", "budget_tokens": max(budget, CLAUDE_MIN_BUDGET)}, None
    adaptive = _adaptive(mode, not _hidden(body))
    if thinking.budget is None:
        return adaptive, None
    return adaptive, CLAUDE_EFFORT[effort_for_budget(thinking.budget)]


def with_effort(fields: JsonObject, effort: str | None) -> None:
    """`output_config.effort`, unless the caller's own output_config says one."""
    own = fields.get("output_config")
    own = own if isinstance(own, dict) else {}
    if effort is not None and "effort" not in own:
        fields["output_config"] = {**own, "effort": effort}


def thinking_on(thinking: Any) -> bool:
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def room_for(
    thinking: Any, max_tokens: int | None, default_answer: int, model: str = ""
) -> int | None:
    """The `max_tokens` Claude needs with `thinking`: above the budget, the answer keeping the
    caller's `max_tokens` (or `default_answer`) beside it, within `model`'s output limit
    (`claude_output_limit`; a name it does not know: no limit). Past the limit the budget gives
    way, in `thinking`: the answer keeps its room (but Claude's least budget, 1024), thinking
    takes the rest. None: keep what there is."""
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if not thinking_on(thinking) or not isinstance(budget, int) or budget <= 0:
        return None  # no budget to fit (one that is no number, Claude judges)
    if max_tokens is not None and max_tokens > budget:
        return None
    answer = max_tokens or default_answer
    limit = claude_output_limit(model)
    if limit is None or budget + answer <= limit:
        return budget + answer
    thinking["budget_tokens"] = limit - min(answer, limit - CLAUDE_MIN_BUDGET)
    return limit


# Claude's most output tokens (`max_tokens`, thinking included) by model, from Anthropic's
# models overview (https://docs.claude.com/en/docs/about-claude/models/overview): (version,
# family or "" for all) → limit. Newer models (4.6 on, whose figures sources disagree on) and
# names without a version are not listed: their calls are sent as asked.
_OUTPUT_LIMITS: dict[tuple[tuple[int, int], str], int] = {
    ((3, 5), ""): 8192,
    ((3, 7), ""): 64000,
    ((4, 0), "opus"): 32000,
    ((4, 0), "sonnet"): 64000,
    ((4, 1), "opus"): 32000,
    ((4, 5), ""): 64000,  # Sonnet, Haiku and Opus 4.5
}


def claude_output_limit(model: str) -> int | None:
    """The most `max_tokens` a Claude model takes, by its name (None: not known)."""
    found = _CLAUDE_VERSION.search(model)
    if found is None:
        return None
    version = (int(found.group(1)), int(found.group(2) or 0))
    family = next((f for f in ("opus", "sonnet", "haiku") if f in model), "")
    return _OUTPUT_LIMITS.get((version, ""), _OUTPUT_LIMITS.get((version, family)))


def without_sampling(params: JsonObject, top_p_key: str = "top_p") -> None:
    """Drop the sampling fields Claude refuses while thinking."""
    for key in _FORBIDDEN_WHILE_THINKING:
        params.pop(key, None)
    top_p = params.get(top_p_key)
    if isinstance(top_p, int | float) and top_p < _MIN_TOP_P_WHILE_THINKING:
        params.pop(top_p_key)


def for_claude(
    out: JsonObject, body: Mapping[str, Any], model: str, default_max_tokens: int
) -> None:
    """Put the reasoning asked for in an Anthropic Messages body (`out`, mapped from `body`)."""
    thinking, effort = claude_knobs(body, out.pop("thinking", None), out.get("tool_choice"), model)
    if thinking is None:
        return
    out["thinking"] = thinking
    with_effort(out, effort)
    if thinking_on(thinking):
        without_sampling(out)
        raised = room_for(thinking, out.get("max_tokens"), default_max_tokens, model)
        if raised is not None:
            out["max_tokens"] = raised


def is_bedrock_claude(model: str) -> bool:
    """A Bedrock model id, inference profile or ARN naming an Anthropic model."""
    return "anthropic." in model or "claude" in model


def for_bedrock(out: JsonObject, body: Mapping[str, Any], model: str) -> None:
    """Claude on Bedrock: Anthropic's `thinking` (and `output_config`) in
    additionalModelRequestFields, the budget rule on inferenceConfig.maxTokens. Other models:
    neither knob (each family has its own), but a `thinking` the caller wrote in its own
    additionalModelRequestFields (Bedrock's field, written on purpose: an application inference
    profile's ARN names no model, and the Claude behind it takes it)."""
    extra = out.get("additionalModelRequestFields")
    extra = extra if isinstance(extra, dict) else {}
    if not is_bedrock_claude(model):
        own = body.get("additionalModelRequestFields")
        if not (isinstance(own, dict) and "thinking" in own):
            extra.pop("thinking", None)
        if not extra:
            out.pop("additionalModelRequestFields", None)
        return
    native = extra.pop("thinking", None)
    choice = (out.get("toolConfig") or {}).get("toolChoice")
    thinking, effort = claude_knobs(body, native, choice, model)
    if thinking is None:
        return
    if thinking_on(thinking):
        inference = out.setdefault("inferenceConfig", {})
        without_sampling(inference, "topP")
        extra.pop("top_k", None)
        raised = room_for(thinking, inference.get("maxTokens"), DEFAULT_ANSWER_TOKENS, model)
        if raised is not None:
            inference["maxTokens"] = raised
    with_effort(extra, effort)
    out["additionalModelRequestFields"] = {**extra, "thinking": thinking}
