"""The efforts each OpenAI model takes, by its name, and the nearest one sent for an effort it
refuses (the e2e tests, tests/e2e/test_reasoning_efforts.py, check what each deployment gets)."""

from __future__ import annotations

import pytest

from router_service.providers._reasoning import for_openai
from router_service.providers._reasoning_efforts import accepted_efforts, fitted_effort


@pytest.mark.parametrize(
    ("model", "efforts"),
    [
        ("o1", ("low", "medium", "high")),
        ("o3-2025-04-16", ("low", "medium", "high")),
        ("o4-mini", ("low", "medium", "high")),
        ("openai/o3-pro", ("low", "medium", "high")),
        ("gpt-oss-120b", ("low", "medium", "high")),
        ("openai/gpt-oss-20b", ("low", "medium", "high")),  # vLLM, Groq
        ("gpt-oss:20b", ("low", "medium", "high")),  # Ollama's tag
        ("gpt-5", ("minimal", "low", "medium", "high")),
        ("gpt-5-mini-2025-08-07", ("minimal", "low", "medium", "high")),
        ("ft:gpt-5-nano-2025-08-07:acme::abc123", ("minimal", "low", "medium", "high")),
        ("gpt-5-codex", ("low", "medium", "high")),
        ("gpt-5-pro", ("high",)),
        ("gpt-5-pro-2025-10-06", ("high",)),
        ("gpt-5.1", ("none", "low", "medium", "high")),
        ("GPT-5.1-2025-11-13", ("none", "low", "medium", "high")),
        ("gpt-5.1-codex", ("low", "medium", "high")),
        ("gpt-5.1-codex-max", ("low", "medium", "high", "xhigh")),
        ("gpt-5.2", ("none", "low", "medium", "high", "xhigh")),
        ("gpt-5.2-pro", ("medium", "high", "xhigh")),
        ("gpt-5.2-codex", ("low", "medium", "high", "xhigh")),
        ("gpt-5.10", ("none", "low", "medium", "high", "xhigh")),
        ("gpt-5.1-chat-latest", ("medium",)),  # "Supported values are: 'medium'"
        ("openai/gpt-5.2-chat-latest", ("medium",)),
        # The name tells nothing: the effort as asked.
        ("gpt-5-chat-latest", None),
        ("my-o3-deployment", None),
        ("deepseek-reasoner", None),
        ("omni-moderation-latest", None),
    ],
)
def test_the_efforts_a_model_takes_by_its_name(model: str, efforts: tuple[str, ...] | None) -> None:
    assert accepted_efforts(model) == efforts


@pytest.mark.parametrize(
    ("effort", "model", "sent"),
    [
        ("none", "gpt-5", "minimal"),
        ("none", "o3", "low"),
        ("none", "gpt-5.1", "none"),
        ("minimal", "gpt-5.1", "low"),  # a tie goes up: reasoning stays on
        ("minimal", "o4-mini", "low"),
        ("minimal", "gpt-5-mini", "minimal"),
        ("xhigh", "gpt-5", "high"),
        ("xhigh", "gpt-5.1", "high"),
        ("xhigh", "gpt-5.1-codex-max", "xhigh"),
        ("low", "gpt-5-pro", "high"),
        ("none", "gpt-5-pro", "high"),
        ("low", "gpt-5.2-pro", "medium"),
        ("none", "gpt-5.1-codex", "low"),
        ("none", "some-local-model", "none"),
        ("none", "gpt-5.1-chat-latest", "medium"),
        ("high", "gpt-5.2-chat-latest", "medium"),
        ("extreme", "o3", "extreme"),  # not an effort: the upstream's 400 says so
    ],
)
def test_the_nearest_effort_the_model_takes(effort: str, model: str, sent: str) -> None:
    assert fitted_effort(effort, model) == sent


@pytest.mark.parametrize(
    ("asked", "model", "sent"),
    [
        ({"reasoning_effort": "none"}, "o3", "low"),
        ({"reasoning": {"effort": "minimal"}}, "gpt-5.1", "low"),
        ({"reasoning": {"enabled": False}}, "gpt-5-mini", "minimal"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "gpt-5-pro", "high"),
    ],
)
def test_every_way_to_ask_is_fitted_at_an_openai_deployment(
    asked: dict[str, object], model: str, sent: str
) -> None:
    body = {"model": model, **asked}
    for_openai(body, model)
    assert body["reasoning_effort"] == sent
