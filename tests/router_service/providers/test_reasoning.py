"""The reasoning mapping's pure rules: which thinking a Claude model takes, by its name on each
platform, and which effort a thinking budget stands for (the e2e tests, tests/e2e/
test_reasoning_sdk.py, check what each kind of upstream receives)."""

from __future__ import annotations

import pytest

from router_service.providers._reasoning import BUDGET_BY_EFFORT, claude_mode, effort_for_budget


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        ("claude-opus-4-7", "adaptive_only"),
        ("claude-mythos-preview", "adaptive_only"),
        ("anthropic.claude-opus-5", "adaptive_only"),
        ("claude-fable-5-1@20270101", "adaptive_only"),
        ("claude-opus-4-6", "adaptive"),
        ("us.anthropic.claude-opus-4-6-v1", "adaptive"),
        ("claude-sonnet-4-6", "adaptive"),
        ("claude-sonnet-4-5@20250929", "budget"),
        ("claude-sonnet-4-5-20250929", "budget"),
        ("claude-opus-4-20250514", "budget"),  # a date is not a minor version
        ("claude-3-7-sonnet-20250219", "budget"),
        ("claude-3-7-sonnet-latest", "budget"),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "budget"),
        ("claude-opus-4-1", "budget"),
        ("claude-haiku-4-5@20251001", "budget"),
        # Before 3.7: no extended thinking (they refuse `thinking`).
        ("anthropic.claude-3-haiku-20240307-v1:0", "none"),
        ("claude-3-5-sonnet-20241022", "none"),
        ("claude-3-5-haiku-latest", "none"),
        ("claude-3-5-sonnet-v2@20241022", "none"),
        ("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", "none"),
        ("claude-3-opus-20240229", "none"),
        ("anthropic.claude-v2:1", "none"),
        ("anthropic.claude-instant-v1", "none"),
        ("claude-2.1", "none"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x1", "budget"),
    ],
)
def test_the_thinking_a_claude_model_takes_follows_its_name(model: str, mode: str) -> None:
    assert claude_mode(model) == mode


@pytest.mark.parametrize(
    ("budget", "effort"),
    [(1, "low"), (1024, "low"), (2047, "low"), (2048, "medium"), (4096, "high"), (31999, "high")],
)
def test_a_budget_stands_for_the_largest_effort_every_openai_model_takes(
    budget: int, effort: str
) -> None:
    """xhigh (8192 and up) is not taken by every OpenAI reasoning model: high is the most."""
    assert effort_for_budget(budget) == effort
    assert BUDGET_BY_EFFORT[effort] <= max(budget, BUDGET_BY_EFFORT["low"])
