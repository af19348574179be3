"""OpenRouter's unified `reasoning` object (the openai SDK's `extra_body`, as SillyTavern or Open
WebUI send it) reaches each kind of deployment as that upstream's own knob, never raw: what the
fake upstream received says which. Its `exclude` is reasoning done and not shown."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_reasoning_sdk import HELLO, config, received


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


async def _sent(sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, **extra: Any) -> Any:
    """What `model`'s upstream received for a chat with `extra` (max_tokens 100)."""
    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, max_tokens=100, extra_body=extra
    )
    assert answer.choices[0].message.content == "Echo: hello"
    body = received(fake)
    assert "reasoning" not in body and "include_reasoning" not in body  # never raw
    if model == "br-claude":
        return body["additionalModelRequestFields"]
    return body


def _knob(body: dict[str, Any]) -> Any:
    """The reasoning knob in an upstream body, whichever kind's it is."""
    if "generationConfig" in body:
        return body["generationConfig"].get("thinkingConfig")
    if "thinking" in body:
        return body["thinking"], body.get("output_config")
    return body.get("reasoning_effort")


HIGH_BUDGET = {"type": "enabled", "budget_tokens": 4096}
# Opus 4.7 and later leave their thinking text out unless asked for its summary.
SUMMARIZED = {"type": "adaptive", "display": "summarized"}


@pytest.mark.parametrize(
    ("model", "knob"),
    [
        ("gpt", "high"),
        ("sonnet", (HIGH_BUDGET, None)),
        ("br-claude", (HIGH_BUDGET, None)),
        ("vx-sonnet", (HIGH_BUDGET, None)),
        ("opus-4-7", (SUMMARIZED, {"effort": "high"})),
        ("gemini", {"thinkingBudget": 24576, "includeThoughts": True}),
        ("command", ({"type": "enabled", "token_budget": 4096}, None)),
    ],
)
async def test_an_effort_is_that_effort_at_each_kind(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, knob: Any
) -> None:
    body = await _sent(sdk, fake, model, reasoning={"effort": "high"})
    assert _knob(body) == knob


@pytest.mark.parametrize(
    ("model", "knob"),
    [
        ("gpt", "medium"),  # the effort under the budget
        ("sonnet", ({"type": "enabled", "budget_tokens": 3000}, None)),
        ("sonnet-4-6", ({"type": "adaptive"}, {"effort": "medium"})),
        ("gemini", {"thinkingBudget": 3000, "includeThoughts": True}),
        ("vx-gemini", {"thinkingBudget": 3000, "includeThoughts": True}),
        ("command", ({"type": "enabled", "token_budget": 3000}, None)),
    ],
)
async def test_max_tokens_is_a_budget_or_the_effort_under_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, knob: Any
) -> None:
    body = await _sent(sdk, fake, model, reasoning={"max_tokens": 3000})
    assert _knob(body) == knob
    if model == "sonnet":  # Claude's rule: the budget under max_tokens, the answer's room kept
        assert body["max_tokens"] == 3100


@pytest.mark.parametrize(
    ("model", "knob"),
    [
        ("gpt", "low"),
        ("sonnet", ({"type": "enabled", "budget_tokens": 1024}, None)),  # Claude's least
        ("gemini", {"thinkingBudget": 500, "includeThoughts": True}),
        ("vx-gemini", {"thinkingBudget": 500, "includeThoughts": True}),
        ("command", ({"type": "enabled", "token_budget": 1024}, None)),
    ],
)
async def test_a_small_max_tokens_is_brought_to_each_kinds_least(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, knob: Any
) -> None:
    body = await _sent(sdk, fake, model, reasoning={"max_tokens": 500})
    assert _knob(body) == knob


@pytest.mark.parametrize(
    ("model", "knob"),
    [
        ("gpt", "medium"),  # OpenRouter's default effort (gpt-5.1's own default is `none`)
        ("sonnet", ({"type": "enabled", "budget_tokens": 2048}, None)),
        ("opus-4-7", (SUMMARIZED, None)),
        ("gemini", {"includeThoughts": True}),  # no budget: dynamic
        ("command", ({"type": "enabled"}, None)),
    ],
)
async def test_enabled_alone_is_reasoning_at_each_kinds_default(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, knob: Any
) -> None:
    body = await _sent(sdk, fake, model, reasoning={"enabled": True})
    assert _knob(body) == knob


@pytest.mark.parametrize(
    ("model", "knob"),
    [
        ("gpt", "none"),
        ("sonnet", ({"type": "disabled"}, None)),
        ("gemini", {"thinkingBudget": 0}),
        ("command", ({"type": "disabled"}, None)),
    ],
)
@pytest.mark.parametrize("off", [{"enabled": False}, {"effort": "none"}, {"max_tokens": 0}])
async def test_reasoning_turned_off(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, knob: Any, off: dict[str, Any]
) -> None:
    body = await _sent(sdk, fake, model, reasoning=off)
    assert _knob(body) == knob


async def test_reasoning_effort_and_thinking_win_over_the_object(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answer = await sdk.chat.completions.create(
        model="sonnet",
        messages=HELLO,
        reasoning_effort="low",
        extra_body={"reasoning": {"max_tokens": 8000}},
    )
    assert answer.choices[0].message.content == "Echo: hello"
    assert _knob(received(fake)) == ({"type": "enabled", "budget_tokens": 1024}, None)
    thinking = {"type": "enabled", "budget_tokens": 5000}
    body = await _sent(sdk, fake, "gemini", thinking=thinking, reasoning={"effort": "low"})
    assert _knob(body) == {"thinkingBudget": 5000, "includeThoughts": True}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning": "high"}, "reasoning"),
        ({"reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"reasoning": {"max_tokens": -5}}, "reasoning.max_tokens"),
        ({"reasoning": {"max_tokens": "2000"}}, "reasoning.max_tokens"),
        ({"reasoning": {"effort": "low", "max_tokens": 2000}}, "reasoning"),
        ({"reasoning": {"exclude": "yes"}}, "reasoning.exclude"),
        ({"include_reasoning": "no"}, "include_reasoning"),
    ],
)
async def test_a_malformed_object_is_refused_naming_its_field(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="gpt", messages=HELLO, extra_body=extra)

    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param
    assert error["type"] == "invalid_request_error" and f"`{param}`" in error["message"]
    assert fake.state.last() is None  # no upstream was called
