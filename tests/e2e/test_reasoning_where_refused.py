"""Where a reasoning knob would be refused, none is sent: Claude models before 3.7 (by name, on
every platform), GPT models without reasoning and Cohere models other than Command A Reasoning
(by name) and deployments marked `reasoning: false` (`true` overrides the name), in
a call and in a stream, first choice or failover; a Gemini thinking budget stays in the range
its model takes."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e import test_reasoning_sdk as reasoning

HELLO: Any = [{"role": "user", "content": "hello"}]
PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = reasoning.config(fake)

    def one(provider: str, model: str, **more: Any) -> dict[str, Any]:
        return {"deployments": [{"provider": provider, "model": model, **more}]}

    out["models"] |= {
        "haiku-3-5": one("claude", "claude-3-5-haiku-20241022"),
        "br-sonnet-3-5": one("br", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        "vx-sonnet-3-5": one("vx-claude", "claude-3-5-sonnet-v2@20241022"),
        "gemini-lite": one("gem", "gemini-2.5-flash-lite"),
        "lite-alias": one("gem", "lite-prod", base_model="gemini-2.5-flash-lite"),
        "haiku-alias": one("claude", "haiku-prod", base_model="claude-3-5-haiku-20241022"),
        "br-profile": one("br", PROFILE),
        "gpt-4o": one("alpha", "gpt-4o", reasoning=False),
        "gpt-4o-mini": one("alpha", "gpt-4o-mini-2024-07-18"),  # told by its name
        "gpt-4.1-forced": one("alpha", "gpt-4.1", reasoning=True),  # the config overrides it
        "command-r": one("co", "command-r-plus-08-2024"),
        "command-forced": one("co", "command-r7b-12-2024", reasoning=True),
        "claude-then-4o": {
            "deployments": [
                {"provider": "claude", "model": "claude-sonnet-4-5"},
                {"provider": "alpha", "model": "gpt-4o", "reasoning": False},
            ]
        },
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


# --- Claude before 3.7: no extended thinking ------------------------------------------------------


@pytest.mark.parametrize("effort", ["high", "none"])
@pytest.mark.parametrize("model", ["haiku-3-5", "vx-sonnet-3-5", "br-sonnet-3-5", "haiku-alias"])
async def test_claude_before_3_7_gets_no_thinking_and_keeps_its_sampling(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, effort: Any
) -> None:
    """Claude 3.5 refuses `thinking` (a 400): an effort is dropped there, as before the knob
    existed, and `temperature` reaches it."""
    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort=effort, temperature=0.3, max_tokens=100
    )

    assert answer.choices[0].message.content == "Echo: hello"
    body = reasoning.received(fake)
    if model == "br-sonnet-3-5":
        assert "thinking" not in body.get("additionalModelRequestFields", {})
        assert body["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.3}
    else:
        assert "thinking" not in body and "output_config" not in body
        assert body["temperature"] == 0.3 and body["max_tokens"] == 100


async def test_a_callers_own_bedrock_thinking_reaches_an_application_inference_profile(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The ARN names no model: Claude's thinking written in Bedrock's own field, on purpose,
    is sent as written (a `thinking` of Anthropic's shape at the top is not: it may be Nova)."""
    thinking = {"type": "enabled", "budget_tokens": 2048}
    await sdk.chat.completions.create(
        model="br-profile",
        messages=HELLO,
        max_tokens=4000,
        extra_body={"additionalModelRequestFields": {"thinking": thinking, "top_k": 5}},
    )

    body = reasoning.received(fake)
    assert body["additionalModelRequestFields"] == {"thinking": thinking, "top_k": 5}


# --- Gemini: each model's budget range ---------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "effort", "budget"),
    [
        ("vx-gemini", "none", 128),  # 2.5 Pro cannot stop thinking: the least it takes
        ("gemini-lite", "minimal", 512),  # Flash-Lite's least above 0
        ("gemini-lite", "none", 0),  # Flash-Lite stops
        ("lite-alias", "minimal", 512),  # its `base_model` is Flash-Lite
        ("gemini", "none", 0),
    ],
)
async def test_an_effort_becomes_a_budget_the_gemini_model_takes(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, effort: Any, budget: int
) -> None:
    await sdk.chat.completions.create(model=model, messages=HELLO, reasoning_effort=effort)

    body = reasoning.received(fake)
    # Reasoning asked for is thoughts asked for; `none` is none (2.5 Pro's least budget too).
    thoughts = {"includeThoughts": True} if effort != "none" else {}
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": budget, **thoughts}


@pytest.mark.parametrize(
    ("model", "thinking", "budget"),
    [
        ("gemini", {"type": "enabled", "budget_tokens": 31999}, 24576),  # 2.5 Flash's most
        ("vx-gemini", {"type": "enabled", "budget_tokens": 31999}, 31999),
        ("vx-gemini", {"type": "disabled"}, 128),
    ],
)
async def test_claude_codes_thinking_becomes_a_budget_the_gemini_model_takes(
    claude: anthropic.AsyncAnthropic,
    fake: FakeUpstream,
    model: str,
    thinking: Any,
    budget: int,
) -> None:
    """Claude Code's thinking (31999 tokens with `ultrathink`) at 2.5 Flash, whose most is
    24576, was refused; 2.5 Pro refuses 0."""
    async with claude.messages.stream(
        model=model, max_tokens=32000, thinking=thinking, messages=HELLO
    ) as stream:
        message = await stream.get_final_message()

    assert message.content[-1].type == "text" and message.content[-1].text == "Echo: hello"
    body = reasoning.received(fake)
    thoughts = {"includeThoughts": True} if thinking["type"] == "enabled" else {}
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": budget, **thoughts}


# --- reasoning: false -----------------------------------------------------------------------------


async def test_a_deployment_without_reasoning_gets_no_reasoning_effort(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        reasoning_effort="high",
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}, "safety_id": "u1"},
    )

    body = reasoning.received(fake)
    assert body["model"] == "gpt-4o"
    assert "reasoning_effort" not in body and "thinking" not in body
    assert body["safety_id"] == "u1"  # the caller's other fields are sent as they were


async def test_a_deployment_without_reasoning_gets_nothing_of_openrouters_object(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answer = await sdk.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        extra_body={"reasoning": {"effort": "high", "exclude": True}},
    )

    assert answer.choices[0].message.content == "Echo: hello"
    body = reasoning.received(fake)
    assert "reasoning_effort" not in body and "reasoning" not in body


async def test_a_stream_to_a_deployment_without_reasoning_gets_no_reasoning_effort(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    stream = await sdk.chat.completions.create(
        model="gpt-4o", messages=HELLO, reasoning_effort="medium", stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert text == "Echo: hello"
    assert "reasoning_effort" not in reasoning.received(fake)


async def test_claude_code_fails_over_to_a_deployment_without_reasoning(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    """Thinking at Claude; at gpt-4o, which refuses `reasoning_effort`, no knob at all (the
    rest of `output_config` kept)."""
    fake.state.set_scenario(Scenario(status=503), key="sk-ant")

    message = await claude.messages.create(
        model="claude-then-4o",
        max_tokens=4000,
        messages=HELLO,
        extra_body={
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high", "note": "kept"},
        },
    )

    assert message.content[0].type == "text" and message.content[0].text == "Echo: hello"
    [at_claude] = fake.state.calls(key="sk-ant")
    assert at_claude.body["thinking"] == {"type": "adaptive"}
    body = reasoning.received(fake)
    assert body["model"] == "gpt-4o"
    assert "reasoning_effort" not in body and "thinking" not in body
    assert body["output_config"] == {"note": "kept"}


@pytest.mark.parametrize(("model", "sent"), [("gpt-4o-mini", False), ("gpt-4.1-forced", True)])
async def test_a_gpt_model_without_reasoning_is_told_by_its_name(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, sent: bool
) -> None:
    thinking = {"type": "enabled", "budget_tokens": 4096}
    await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort="low", extra_body={"thinking": thinking}
    )

    body = reasoning.received(fake)
    assert "thinking" not in body
    assert body.get("reasoning_effort") == ("low" if sent else None)


@pytest.mark.parametrize(("model", "sent"), [("command-r", False), ("command-forced", True)])
async def test_only_cohere_reasoning_models_get_thinking_from_an_effort(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, sent: bool
) -> None:
    stream = await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort="high", stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert text == "Echo: hello"
    expected = {"type": "enabled", "token_budget": 4096} if sent else None
    assert reasoning.received(fake).get("thinking") == expected
