"""OpenAI-compatible upstreams that say a finish reason in words of their own for one OpenAI
has: Mistral's `model_length` (its context window reached: Mistral's ChatCompletionChoice
`finish_reason` enum is stop, length, model_length, error, tool_calls) is OpenAI's `length`,
which callers test for to know the answer was cut; unary and streamed alike. A word with no
OpenAI equivalent goes on as the upstream said it."""

from __future__ import annotations

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_reasoning_sdk import HELLO


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_mistrals_model_length_is_openais_length(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="model_length"))

    if streaming:
        stream = await sdk.chat.completions.create(model="chain", messages=HELLO, stream=True)
        reasons = [c.choices[0].finish_reason async for c in stream if c.choices]
        assert [r for r in reasons if r] == ["length"]
    else:
        answer = await sdk.chat.completions.create(model="chain", messages=HELLO)
        assert answer.choices[0].finish_reason == "length"


async def test_a_finish_word_openai_has_none_for_goes_on_as_said(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="eos_token"))

    answer = await sdk.chat.completions.create(model="chain", messages=HELLO)

    said: str = answer.choices[0].finish_reason
    assert said == "eos_token"
