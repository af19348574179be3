"""The reasoning mapping's pure rules: which thinking a Claude model takes, by its name on each
platform, and which effort a thinking budget stands for (the e2e tests, tests/e2e/
test_reasoning_sdk.py, check what each kind of upstream receives)."""

from __future__ import annotations

import pytest

from router_service.providers._reasoning import BUDGET_BY_EFFORT, effort_for_budget
from router_service.providers._reasoning_budgets import gemini_fitted
from router_service.providers._reasoning_claude import claude_mode
from router_service.providers._reasoning_models import takes_reasoning
from router_service.providers._reasoning_object import is_google_openai, is_openrouter

VERTEX = "aiplatform.googleapis.com"
P = "/projects/p/locations"


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


@pytest.mark.parametrize(
    ("model", "budget", "fitted"),
    [
        ("gemini-2.5-pro", 0, 128),
        ("gemini-2.5-pro-preview-06-05", 40000, 32768),
        ("gemini-2.5-flash-lite-preview-09-2025", 128, 512),
        ("gemini-2.5-flash-lite", 0, 0),
        ("gemini-2.5-flash-preview-05-20", 31999, 24576),
        ("gemini-2.5-flash", 0, 0),
        ("gemini-3-pro-preview", 31999, 31999),  # no documented range: as asked
    ],
)
def test_a_gemini_budget_is_brought_into_its_models_range(
    model: str, budget: int, fitted: int
) -> None:
    assert gemini_fitted(budget, model) == fitted


@pytest.mark.parametrize(
    ("kind", "model", "takes"),
    [
        ("openai", "gpt-4o", False),
        ("openai", "gpt-4o-mini-2024-07-18", False),
        ("openai", "chatgpt-4o-latest", False),
        ("openai", "gpt-4.1-nano", False),
        ("openai", "gpt-4", False),
        ("openai", "gpt-4-turbo-2024-04-09", False),
        ("openai", "gpt-3.5-turbo", False),
        ("openai", "openai/gpt-4o", False),  # OpenRouter's namespace
        ("azure", "gpt-4o", False),  # an Azure deployment named for its model
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme::9xQ2", False),  # fine-tuned from one
        ("openai", "ft:gpt-4.1-2025-04-14:acme:support:Bz7", False),
        ("openai", "gpt-5-chat-latest", False),  # GPT-5's chat model refuses the effort
        ("azure", "gpt-5-chat", False),
        ("openai", "o1-mini", False),  # the first o1 models refuse `reasoning_effort`
        ("openai", "o1-mini-2024-09-12", False),
        ("azure", "o1-preview", False),
        ("openai", "o1", True),
        ("openai", "o1-2024-12-17", True),
        ("openai", "ft:o4-mini-2025-04-16:acme::Rf1", True),
        ("openai", "o4-mini", True),
        ("openai", "o3", True),
        ("openai", "gpt-5-mini", True),
        ("openai", "gpt-oss-120b", True),
        ("openai", "my-gpt-4o-finetune", True),  # not the name's start: told nothing
        ("cohere", "command-a-reasoning-08-2025", True),
        ("cohere", "command-a-03-2025", False),
        ("cohere", "command-r-plus-08-2024", False),
        ("anthropic", "claude-3-5-haiku-latest", True),  # claude_mode's to tell
        ("gemini", "gemini-2.0-flash", True),
    ],
)
def test_which_models_take_a_reasoning_knob_follows_their_name(
    kind: str, model: str, takes: bool
) -> None:
    assert takes_reasoning(kind, model) is takes


@pytest.mark.parametrize(
    ("base_url", "openrouter"),
    [
        ("https://openrouter.ai/api/v1", True),
        ("https://OpenRouter.ai/api/v1/", True),
        ("https://eu.openrouter.ai/api/v1", True),
        ("https://api.openai.com/v1", False),
        ("https://openrouter.ai.example.com/v1", False),
        ("https://notopenrouter.ai/v1", False),
    ],
)
def test_openrouter_is_told_by_its_host(base_url: str, openrouter: bool) -> None:
    assert is_openrouter(base_url) is openrouter


@pytest.mark.parametrize(
    ("base_url", "google"),
    [
        ("https://generativelanguage.googleapis.com/v1beta/openai", True),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", True),
        ("https://generativelanguage.googleapis.com/v1beta", False),  # the gemini kind's API
        ("https://generativelanguage.googleapis.com.example.com/v1beta/openai", False),
        ("https://api.openai.com/v1", False),
        # Vertex AI's, global and regional, v1 and v1beta1 (P: …/projects/p/locations)
        (f"https://{VERTEX}/v1{P}/global/endpoints/openapi", True),
        (f"https://us-central1-{VERTEX}/v1beta1{P}/us-central1/endpoints/openapi/", True),
        (f"https://{VERTEX}/v1{P}/us-central1/endpoints/e123", False),  # a deployed model's
        (f"https://{VERTEX}/v1{P}/l/publishers/google/models/g", False),
        (f"https://{VERTEX}.example.com/v1{P}/l/endpoints/openapi", False),
        (f"https://not{VERTEX}/v1{P}/l/endpoints/openapi", False),
    ],
)  # fmt: skip
def test_googles_openai_compatible_endpoint_is_told_by_its_url(base_url: str, google: bool) -> None:
    assert is_google_openai(base_url) is google
