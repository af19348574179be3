"""Reasoning a Responses API deployment sends back as items (`include:
["reasoning.encrypted_content"]`) under the router's other rules: a caller who hides the
answer's reasoning (`reasoning.exclude`) does not read its summary, unary or streamed; a
chat-completions caller gets the items on the message and hands them back."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.codex_turns import config

THOUGHT = "The secret plan is to say hi."
HIDDEN: dict[str, Any] = {
    "include": ["reasoning.encrypted_content"],
    "reasoning": {"effort": "low", "exclude": True},
}
HELLO: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture(autouse=True)
def reasoning(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(reasoning=THOUGHT, content="Hi."))


async def test_a_hidden_answer_shows_no_summary_of_the_upstream_s_items(
    sdk: openai.AsyncOpenAI,
) -> None:
    answer = await sdk.chat.completions.create(
        model="codex-responses", messages=HELLO, extra_body=HIDDEN
    )

    assert answer.choices[0].message.content == "Hi."
    assert THOUGHT not in answer.model_dump_json()


async def test_a_hidden_stream_shows_no_summary_of_the_upstream_s_items(
    sdk: openai.AsyncOpenAI,
) -> None:
    stream = await sdk.chat.completions.create(
        model="codex-responses", messages=HELLO, extra_body=HIDDEN, stream=True
    )
    chunks = [chunk.model_dump_json() async for chunk in stream]

    assert "Hi." in "".join(chunks)
    assert not [chunk for chunk in chunks if "secret" in chunk]


async def test_a_hidden_responses_stream_has_each_reasoning_item_once(
    sdk: openai.AsyncOpenAI,
) -> None:
    stream = await sdk.responses.create(
        model="codex-responses",
        input="hello",
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "low"},
        stream=True,
        extra_body={"include_reasoning": False},
    )
    events = [event async for event in stream]
    done = [e.item for e in events if e.type == "response.output_item.done"]

    [reasoning] = [item for item in done if item.type == "reasoning"]
    assert reasoning.summary == [] and reasoning.encrypted_content
    assert THOUGHT not in "".join(e.model_dump_json() for e in events)


async def test_a_chat_caller_gets_the_items_and_hands_them_back(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A chat-completions caller that sends the same `include` gets the items on the message
    (`reasoning_items`, each with `precedes`) and hands the message back as it came: the next
    call of the Responses API deployment gets the item again, before the message."""
    asks: dict[str, Any] = {"include": ["reasoning.encrypted_content"], "reasoning_effort": "low"}
    answer = await sdk.chat.completions.create(
        model="codex-responses", messages=HELLO, extra_body=asks
    )
    message = answer.choices[0].message.model_dump(exclude_none=True)
    [item] = message["reasoning_items"]
    assert item["encrypted_content"] and item["precedes"] == 0

    again = [*HELLO, message, {"role": "user", "content": "and then?"}]
    await sdk.chat.completions.create(model="codex-responses", messages=again, extra_body=asks)
    sent = fake.state.records[-1].body["input"]
    kinds = [entry.get("type", "message") for entry in sent]
    assert kinds[1:3] == ["reasoning", "message"]
    assert sent[1]["encrypted_content"] == item["encrypted_content"]
    assert "precedes" not in sent[1]
