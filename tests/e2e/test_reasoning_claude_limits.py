"""A thinking budget past what a Claude model can put out (OpenRouter's `reasoning.max_tokens`,
Anthropic's `thinking`) is brought within the model's output limit, so the call is one Claude
takes (budget under `max_tokens`, `max_tokens` at most the limit), at Anthropic, Vertex AI and
Bedrock alike; a model whose limit the router does not know is sent the budget as asked. The
fake upstream refuses what the real API refuses."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e import test_reasoning_sdk as reasoning

HELLO: Any = [{"role": "user", "content": "hello"}]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = reasoning.config(fake)

    def one(provider: str, model: str) -> dict[str, Any]:
        return {"deployments": [{"provider": provider, "model": model}]}

    out["models"] |= {
        "sonnet-4-5": one("claude", "claude-sonnet-4-5-20250929"),
        "opus-4-1": one("claude", "claude-opus-4-1-20250805"),
        "vx-opus-4-1": one("vx-claude", "claude-opus-4-1@20250805"),
        "br-opus-4-1": one("br", "us.anthropic.claude-opus-4-1-20250805-v1:0"),
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def sent(fake: FakeUpstream, model: str) -> tuple[int, int]:
    """(thinking budget, max_tokens) of the call's body, in Anthropic's or Converse's fields."""
    body = reasoning.received(fake)
    if model.startswith("br-"):
        thinking = body["additionalModelRequestFields"]["thinking"]
        return thinking["budget_tokens"], body["inferenceConfig"]["maxTokens"]
    return body["thinking"]["budget_tokens"], body["max_tokens"]


@pytest.mark.parametrize(
    ("model", "budget", "max_tokens"),
    [
        # 64000 at most: the answer keeps its 4096 (the provider's default), thinking the rest.
        ("sonnet-4-5", 64000 - 4096, 64000),
        ("opus-4-1", 32000 - 4096, 32000),
        ("vx-opus-4-1", 32000 - 4096, 32000),
        ("br-opus-4-1", 32000 - 4096, 32000),
        ("sonnet", 100000, 100000 + 4096),  # claude-x: no limit known, as asked
    ],
)
async def test_openrouters_huge_budget_fits_the_models_output_limit(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, budget: int, max_tokens: int
) -> None:
    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, extra_body={"reasoning": {"max_tokens": 100000}}
    )

    assert answer.choices[0].message.content == "Echo: hello"
    assert sent(fake, model) == (budget, max_tokens)


@pytest.mark.parametrize("model", ["opus-4-1", "vx-opus-4-1"])
async def test_claude_codes_budget_past_the_limit_fits_it_at_the_messages_entrance(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    """A caller's own `thinking` of 40000 with `max_tokens` 2000 (the answer's room) at Opus 4.1
    (32000): raised past the limit it would be refused; the answer keeps its 2000."""
    message = await claude.messages.create(
        model=model,
        max_tokens=2000,
        messages=HELLO,
        thinking={"type": "enabled", "budget_tokens": 40000},
    )

    assert message.content[-1].type == "text"
    assert sent(fake, model) == (30000, 32000)


async def test_a_budget_that_fits_is_sent_as_asked(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Within the limit nothing changes: budget + the caller's `max_tokens`."""
    await sdk.chat.completions.create(
        model="opus-4-1",
        messages=HELLO,
        max_tokens=1000,
        extra_body={"reasoning": {"max_tokens": 20000}},
    )

    assert sent(fake, "opus-4-1") == (20000, 21000)


async def test_a_budget_that_is_no_number_is_claudes_to_refuse(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A caller's own `thinking` (a provider-specific key at the chat entrance) whose budget is
    no integer: nothing to fit, sent as asked, and Claude's 400 is the caller's; the router
    failed on it (a 500, "Internal router error")."""
    thinking = {"type": "enabled", "budget_tokens": "lots"}
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="opus-4-1", messages=HELLO, max_tokens=1000, extra_body={"thinking": thinking}
        )

    assert "budget_tokens" in str(refused.value.message)
    body = reasoning.received(fake)
    assert (body["thinking"], body["max_tokens"]) == (thinking, 1000)
