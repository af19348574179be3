"""A stop sequence of whitespace alone (`"\\n"`, a line at a time), which OpenAI takes and
Anthropic refuses ("stop_sequences: each stop sequence must contain non-whitespace", a 400),
is not sent to Claude: the router enforces it on the answer, as it does the stops past an
upstream's cap. It was sent, and the caller had Anthropic's 400."""

from __future__ import annotations

from typing import Any

import openai

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_anthropic_sdk import router  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]
TEXT = "first line\nsecond line END third"


def sent_stops(fake: FakeUpstream) -> Any:
    record = fake.state.last()
    assert record is not None and record.status == 200
    return record.body.get("stop_sequences")


async def test_a_blank_stop_is_the_routers_and_the_others_claudes(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    answer = await sdk.chat.completions.create(model="sonnet", messages=HELLO, stop=["\n", "END"])
    [choice] = answer.choices
    assert (choice.message.content, choice.finish_reason) == ("first line", "stop")
    assert sent_stops(fake) == ["END"]
    lone = await sdk.chat.completions.create(model="sonnet", messages=HELLO, stop=" \t")
    assert lone.choices[0].message.content == TEXT  # none in it: the whole answer
    assert sent_stops(fake) is None


async def test_a_stream_ends_at_a_blank_stop(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    stream = await sdk.chat.completions.create(
        model="sonnet", messages=HELLO, stop="\n", stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "first line"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert sent_stops(fake) is None
