"""Conversations OpenAI takes as they are, which Claude (Anthropic, Vertex AI) and Bedrock's
Converse refused as written: a text part of whitespace alone (an assistant's "\n\n" beside its
tool calls, a user's stray newline part) is a 400 for the whole request there ("text content
blocks must contain non-whitespace text", "The text field in the ContentBlock object at
messages.1.content.0 is blank"), turn after turn of a conversation that carries it."""

from __future__ import annotations

from typing import cast

import openai
import pytest
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream
from tests.conformance.helpers import WEATHER_TOOL
from tests.conformance.profiles import BY_KIND, Profile
from tests.conformance.test_edge_sdk import sdk  # noqa: F401

CALL = {"id": "call_1", "type": "function"}
CALL_FUNCTION = {"name": "get_weather", "arguments": '{"city": "Paris"}'}


def _blank_conversation() -> list[ChatCompletionMessageParam]:
    asked: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "what is the weather"},
        {"type": "text", "text": "\n"},
    ]
    return cast(
        list[ChatCompletionMessageParam],
        [
            {"role": "user", "content": asked},
            {
                "role": "assistant",
                "content": "\n\n",
                "tool_calls": [CALL | {"function": CALL_FUNCTION}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "22 degrees"},
            {"role": "assistant", "content": "It is 22 degrees."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "thanks"}, {"type": "text", "text": " \t"}],
            },
        ],
    )


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_whitespace_text_parts_are_answered(
    sdk: openai.AsyncOpenAI,  # noqa: F811
    fake: FakeUpstream,
    profile: Profile,
    stream: bool,
) -> None:
    messages = _blank_conversation()
    if stream:
        chunks = await sdk.chat.completions.create(
            model="solo", messages=messages, tools=[WEATHER_TOOL], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        answer = await sdk.chat.completions.create(
            model="solo", messages=messages, tools=[WEATHER_TOOL]
        )
        text = answer.choices[0].message.content or ""

    assert text.rstrip() == "Echo: thanks"  # the whitespace echoed where it was sent
    record = fake.state.last(model="m-up")
    assert record is not None and record.status == 200
    seen = profile.read(record.body)
    assert seen.tool_results == ["22 degrees"]  # the rest of the conversation as it was


async def test_a_turn_of_whitespace_alone_is_not_left_out(
    sdk: openai.AsyncOpenAI,  # noqa: F811
    fake: FakeUpstream,
    profile: Profile,
) -> None:
    """A user turn of whitespace alone stays: left out, the conversation would end with the
    assistant's turn, which Claude reads as the start of its answer (it would go on with the
    answer before, unasked). Claude and Converse refuse it, saying why; the others answer."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "\n"},
    ]
    refuses = profile.read in (BY_KIND["anthropic"].read, BY_KIND["bedrock"].read)
    if not refuses:
        answer = await sdk.chat.completions.create(model="solo", messages=messages)
        assert answer.choices[0].message.content is not None
        return
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="solo", messages=messages)
    record = fake.state.last(model="m-up")
    assert record is not None and record.status == 400
    assert record.body["messages"][-1]["role"] == "user"


@pytest.mark.parametrize(
    "tail",
    [
        # A turn of whitespace alone earlier on (another deployment of the group answered it):
        # left out, the assistant's turns around it read as one.
        [
            {"role": "user", "content": "\n"},
            {"role": "assistant", "content": "Did you mean to ask something?"},
            {"role": "user", "content": "thanks"},
        ],
        # Last, after a tool's result: left out, the conversation still ends on the user's side.
        [
            {"role": "assistant", "tool_calls": [CALL | {"function": CALL_FUNCTION}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22 degrees"},
            {"role": "user", "content": " \n"},
        ],
    ],
    ids=["earlier", "after-tool-result"],
)
async def test_a_turn_of_whitespace_alone_not_last_is_left_out(
    sdk: openai.AsyncOpenAI,  # noqa: F811
    fake: FakeUpstream,
    profile: Profile,
    tail: list[dict[str, object]],
) -> None:
    """Only a turn of whitespace alone that leaving out would leave the assistant's turn last
    is sent (and refused); one anywhere else is left out like a part of whitespace alone, or
    the conversation it is in were refused on every later turn."""
    messages = cast(
        list[ChatCompletionMessageParam],
        [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Hi."},
            *tail,
        ],
    )
    answer = await sdk.chat.completions.create(
        model="solo", messages=messages, tools=[WEATHER_TOOL]
    )
    assert answer.choices[0].message is not None
    record = fake.state.last(model="m-up")
    assert record is not None and record.status == 200
