"""Gemini's filter withholding an answer after its thoughts (parts of `thought: true`, asked
for by `reasoning_effort`): a candidate of thoughts and no text that ends with SAFETY. Unary,
nothing reached the caller: the same 400 as an answer withheld whole (`content_filter`,
Gemini's words under `provider_error`; the group's next deployment may answer). Streamed, the
thoughts already did: the stream ends as one the filter cut off after text does, with
`finish_reason: "content_filter"` (OpenAI's word for content its filter withheld) and its
usage, not an error event that says less."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_gemini_sdk import config

HELLO: Any = [{"role": "user", "content": "bad"}]
THOUGHTS = "thinking it over"


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture(autouse=True)
def withheld_after_thoughts(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(finish_reason="SAFETY", reasoning=THOUGHTS))


async def test_unary_it_is_the_400_of_an_answer_withheld_whole(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="flash", messages=HELLO, reasoning_effort="low")
    error: Any = refused.value.body
    assert (error["type"], error["code"]) == ("invalid_request_error", "content_filter")
    assert error["provider_error"] == {"candidates": [{"finishReason": "SAFETY", "index": 0}]}


async def test_streamed_the_thoughts_end_with_finish_reason_content_filter(
    sdk: openai.AsyncOpenAI,
) -> None:
    stream = await sdk.chat.completions.create(
        model="flash",
        messages=HELLO,
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, content, finishes, usage = [], [], [], []
    async for chunk in stream:  # no error event: openai.APIError would be raised here
        delta: Any
        for choice in chunk.choices:
            delta = choice.delta
            reasoning.append(getattr(delta, "reasoning_content", None) or "")
            content.append(delta.content or "")
            finishes += [choice.finish_reason] if choice.finish_reason else []
        usage += [chunk.usage] if chunk.usage else []
    assert "".join(reasoning) == THOUGHTS
    assert not "".join(content)
    assert finishes == ["content_filter"]
    assert len(usage) == 1 and usage[0].completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_thoughts_the_caller_hid_leave_it_the_400_unary_and_streamed(
    sdk: openai.AsyncOpenAI, stream: bool
) -> None:
    """Thoughts asked not to be shown (`reasoning.exclude`: the router asks for them and takes
    them out) reached nobody: streamed as unary, the answer withheld whole is the 400 (the
    group's next deployment may answer), not an empty stream that ends `content_filter`."""
    hidden: Any = {"reasoning": {"effort": "low", "exclude": True}}
    with pytest.raises(openai.BadRequestError) as refused:
        reply = await sdk.chat.completions.create(
            model="flash", messages=HELLO, stream=stream, extra_body=hidden
        )
        async for _ in reply:  # type: ignore[union-attr]
            pass
    error: Any = refused.value.body
    assert (error["type"], error["code"]) == ("invalid_request_error", "content_filter")
    assert error["provider_error"] == {"candidates": [{"finishReason": "SAFETY", "index": 0}]}
