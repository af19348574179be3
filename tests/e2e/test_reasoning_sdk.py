"""One reasoning knob across providers: OpenAI's `reasoning_effort` (the openai SDK) and
Anthropic's `thinking` (the anthropic SDK at `/v1/messages`) reach each kind of deployment as
that upstream's own knob: what the fake upstream received says which."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    FakeUpstream,
    Scenario,
)
from router_service.fake_upstream._gemini import THOUGHTS
from tests.conftest import RouterHandle, StartRouter, base_config

IAM = f"{FAKE_AWS_ACCESS_KEY_ID}:{FAKE_AWS_SECRET_ACCESS_KEY}"
HELLO: Any = [{"role": "user", "content": "hello"}]
VERTEX = {"kind": "vertex", "project": "acme-prod", "location": "us-central1", "keys": ["ya29.t"]}


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["providers"] |= {
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]},
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
        "br": {"kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": [IAM]},
        "vx-google": {**VERTEX, "base_url": fake.url},
        "vx-claude": {**VERTEX, "base_url": fake.url, "publisher": "anthropic"},
    }

    def one(provider: str, model: str) -> dict[str, Any]:
        return {"deployments": [{"provider": provider, "model": model}]}

    out["models"] |= {
        "gpt": one("alpha", "model-a"),
        "sonnet": one("claude", "claude-x"),
        "opus-4-7": one("claude", "claude-opus-4-7"),
        "sonnet-4-6": one("claude", "claude-sonnet-4-6"),
        "gemini": one("gem", "gemini-2.5-flash"),
        "command": one("co", "command-a-reasoning"),
        "br-claude": one("br", "anthropic.claude-sonnet-4-5-v1:0"),
        "br-nova": one("br", "amazon.nova-pro-v1:0"),
        "vx-gemini": one("vx-google", "gemini-2.5-pro"),
        "vx-sonnet": one("vx-claude", "claude-sonnet-4-5@20250929"),
        "claude-then-gpt": {
            "deployments": [
                {"provider": "claude", "model": "claude-x"},
                {"provider": "alpha", "model": "model-a"},
            ]
        },
    }
    return out


def claude_three_ways(fake: FakeUpstream, models: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A config with Claude at Anthropic (`claude`), Vertex (`vx`) and Bedrock (`br`), and one
    single-deployment model per entry of `models` (name: (provider, upstream model))."""
    out = base_config(fake.base_url)
    out["providers"] |= {
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "vx": {**VERTEX, "base_url": fake.url, "publisher": "anthropic"},
        "br": {"kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": [IAM]},
    }
    for name, (provider, model) in models.items():
        out["models"][name] = {"deployments": [{"provider": provider, "model": model}]}
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def received(fake: FakeUpstream) -> dict[str, Any]:
    sent = fake.state.last()
    assert sent is not None
    return sent.body


# --- reasoning_effort, from the openai SDK --------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "knob"),
    [
        ("gpt", {"reasoning_effort": "high"}),
        ("sonnet", {"thinking": {"type": "enabled", "budget_tokens": 4096}}),
        ("br-claude", {"thinking": {"type": "enabled", "budget_tokens": 4096}}),
        ("vx-sonnet", {"thinking": {"type": "enabled", "budget_tokens": 4096}}),
        ("command", {"thinking": {"type": "enabled", "token_budget": 4096}}),
    ],
)
async def test_reasoning_effort_becomes_each_kinds_knob(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, knob: dict[str, Any]
) -> None:
    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort="high", max_tokens=100
    )

    assert answer.choices[0].message.content == "Echo: hello"
    body = received(fake)
    [(key, value)] = knob.items()
    thinking = body.get("additionalModelRequestFields", {}) if model == "br-claude" else body
    assert thinking[key] == value
    if model != "gpt":
        assert "reasoning_effort" not in body


@pytest.mark.parametrize("model", ["gemini", "vx-gemini"])
async def test_reasoning_effort_becomes_gemini_thinking_budget(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    answer = await sdk.chat.completions.create(model=model, messages=HELLO, reasoning_effort="low")

    body = received(fake)
    thinking = {"thinkingBudget": 1024, "includeThoughts": True}
    assert body["generationConfig"]["thinkingConfig"] == thinking
    assert "reasoning_effort" not in body and "thinking" not in body
    # Its thought summary (the fake's own, no scenario saying one) is the reasoning.
    assert (answer.choices[0].message.model_extra or {})["reasoning_content"] == THOUGHTS


async def test_a_cohere_reasoning_models_thinking_is_the_reasoning(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(reasoning="Two and two make four."))
    answer = await sdk.chat.completions.create(
        model="command", messages=HELLO, reasoning_effort="high", max_tokens=100
    )
    extra = answer.choices[0].message.model_extra or {}
    assert (answer.choices[0].message.content, extra.get("reasoning_content")) == (
        "Echo: hello",
        "Two and two make four.",
    )

    stream = await sdk.chat.completions.create(
        model="command", messages=HELLO, reasoning_effort="high", max_tokens=100, stream=True
    )
    deltas = [c.choices[0].delta async for c in stream if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == "Two and two make four."
    assert "".join(d.content or "" for d in deltas) == "Echo: hello"


async def test_bedrock_models_other_than_claude_get_no_reasoning_field(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="br-nova", messages=HELLO, reasoning_effort="high", extra_body={"thinking": {}}
    )

    body = received(fake)
    assert "thinking" not in body.get("additionalModelRequestFields", {})
    assert "reasoning_effort" not in body


async def test_claude_budget_fits_under_max_tokens_and_sampling_is_dropped(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="sonnet", messages=HELLO, reasoning_effort="medium", max_tokens=500, temperature=0.2
    )

    body = received(fake)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 2048 + 500  # the answer keeps the room the caller gave it
    assert "temperature" not in body


@pytest.mark.parametrize("effort", ["minimal", "none"])
async def test_the_least_efforts_turn_claude_thinking_off(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, effort: Any
) -> None:
    await sdk.chat.completions.create(model="sonnet", messages=HELLO, reasoning_effort=effort)

    assert received(fake)["thinking"] == {"type": "disabled"}


async def test_a_callers_own_thinking_wins_at_claude(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    own = {"type": "enabled", "budget_tokens": 3000}
    await sdk.chat.completions.create(
        model="sonnet",
        messages=HELLO,
        reasoning_effort="high",
        max_tokens=8000,
        extra_body={"thinking": own},
    )

    body = received(fake)
    assert body["thinking"] == own and body["max_tokens"] == 8000


async def test_a_callers_own_thinking_config_wins_at_gemini(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    own = {"generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}}}
    await sdk.chat.completions.create(
        model="gemini", messages=HELLO, reasoning_effort="high", extra_body=own
    )

    assert received(fake)["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "low"}


@pytest.mark.parametrize(
    ("model", "effort", "thinking", "output_config"),
    [
        ("opus-4-7", "high", {"type": "adaptive", "display": "summarized"}, {"effort": "high"}),
        ("opus-4-7", "none", {"type": "adaptive"}, {"effort": "low"}),  # it refuses disabled
        ("sonnet-4-6", "medium", {"type": "adaptive"}, {"effort": "medium"}),
        ("sonnet-4-6", "minimal", {"type": "disabled"}, None),
    ],
)
async def test_claude_models_that_take_adaptive_thinking_get_it_with_an_effort(
    sdk: openai.AsyncOpenAI,
    fake: FakeUpstream,
    model: str,
    effort: Any,
    thinking: dict[str, Any],
    output_config: dict[str, Any] | None,
) -> None:
    await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort=effort, max_tokens=300
    )

    body = received(fake)
    assert body["thinking"] == thinking and body.get("output_config") == output_config
    assert body["max_tokens"] == 300  # no budget: nothing to fit under max_tokens


# --- thinking, from the anthropic SDK at /v1/messages ---------------------------------------------


async def test_thinking_at_an_openai_deployment_becomes_reasoning_effort(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    message = await claude.messages.create(
        model="gpt",
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 5000},
        messages=HELLO,
    )

    assert [b.type for b in message.content] == ["text"]
    body = received(fake)
    assert body["reasoning_effort"] == "high" and "thinking" not in body


async def test_thinking_at_a_gemini_deployment_becomes_its_thinking_budget(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    await claude.messages.create(
        model="gemini",
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 3000},
        messages=HELLO,
    )

    body = received(fake)
    thinking = {"thinkingBudget": 3000, "includeThoughts": True}
    assert body["generationConfig"]["thinkingConfig"] == thinking
    assert "thinking" not in body


async def test_failover_from_claude_to_an_openai_deployment_with_thinking_on(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=503), key="sk-ant")

    message = await claude.messages.create(
        model="claude-then-gpt",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=HELLO,
    )

    assert message.content[0].type == "text" and message.content[0].text == "Echo: hello"
    [at_claude] = fake.state.calls(key="sk-ant")
    assert at_claude.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    body = received(fake)
    assert body["model"] == "model-a"
    assert body["reasoning_effort"] == "medium" and "thinking" not in body


@pytest.mark.parametrize(
    ("model", "output_config", "expected"),
    [
        ("gpt", {"effort": "medium"}, {"reasoning_effort": "medium"}),
        ("gpt", {"effort": "max"}, {"reasoning_effort": "high"}),  # every model takes high
        (
            "gemini",
            {"effort": "low"},
            {"generationConfig.thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
        ),
        (
            "gemini",
            None,
            {"generationConfig.thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}},
        ),
        (  # the effort's Gemini budget, as reasoning_effort `high` gets it
            "gemini",
            {"effort": "high"},
            {"generationConfig.thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True}},
        ),
        ("command", {"effort": "high"}, {"thinking": {"type": "enabled", "token_budget": 4096}}),
    ],
)
async def test_adaptive_thinking_and_its_effort_at_other_kinds(
    claude: anthropic.AsyncAnthropic,
    fake: FakeUpstream,
    model: str,
    output_config: dict[str, Any] | None,
    expected: dict[str, Any],
) -> None:
    extra: dict[str, Any] = {"thinking": {"type": "adaptive"}}
    if output_config is not None:
        extra["output_config"] = output_config
    await claude.messages.create(model=model, max_tokens=800, messages=HELLO, extra_body=extra)

    body = received(fake)
    [(path, value)] = expected.items()
    found: Any = body
    for key in path.split("."):
        found = found[key]
    assert found == value
    assert "output_config" not in body
    if model != "command":
        assert "thinking" not in body


@pytest.mark.parametrize("model", ["gpt", "gemini"])
async def test_a_streamed_message_with_thinking_at_other_kinds(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    async with claude.messages.stream(
        model=model, max_tokens=4000, thinking=thinking, messages=HELLO
    ) as stream:
        message = await stream.get_final_message()

    assert message.content[-1].type == "text" and message.content[-1].text == "Echo: hello"
    body = received(fake)
    assert "thinking" not in body
    if model == "gpt":
        assert body["reasoning_effort"] == "medium"
    else:  # Gemini's thoughts are the message's thinking
        thinking = {"thinkingBudget": 2048, "includeThoughts": True}
        assert body["generationConfig"]["thinkingConfig"] == thinking
        assert [b.type for b in message.content] == ["thinking", "text"]
