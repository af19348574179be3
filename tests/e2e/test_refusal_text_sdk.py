"""A model's refusal of a structured output (OpenAI's message `refusal`, its content null) at
the entrances whose answers have one place for text: Anthropic's Messages API (a text block)
and the legacy completions (`text`), plain and streamed, as the Gemini and Ollama entrances
say it (`test_gemini_sdk`, `test_ollama_sdk`). It was an empty answer, telling nothing."""

from __future__ import annotations

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config

SAID = "I'm sorry, I cannot help with that."
ASK: list[anthropic.types.MessageParam] = [{"role": "user", "content": "x"}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(base_config(fake.base_url))


async def test_a_messages_api_answer_says_the_refusal(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=SAID, refusal=True, times=2))
    message = await claude.messages.create(model="chain", max_tokens=64, messages=ASK)
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", SAID)]
    assert message.stop_reason == "end_turn"
    async with claude.messages.stream(model="chain", max_tokens=64, messages=ASK) as stream:
        streamed = await stream.get_final_message()
    assert [(b.type, getattr(b, "text", None)) for b in streamed.content] == [("text", SAID)]


async def test_a_legacy_completion_says_the_refusal(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=SAID, refusal=True, times=2))
    completion = await sdk.completions.create(model="chain", prompt="x")
    assert completion.choices[0].text == SAID
    stream = await sdk.completions.create(model="chain", prompt="x", stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices]) == SAID
