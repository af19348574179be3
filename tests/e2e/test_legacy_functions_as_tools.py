"""Legacy `functions` with a `function_call` ("auto", "none", none, or one function's name) at
a kind whose API has no such fields (Claude's Messages API, Gemini, Cohere, Bedrock's Converse,
the Responses API): they were dropped (a forced one refused), so the model could never call one.
They reach it as the tools they stand for, the very body `tools` would make, and its call comes
back in the legacy shape OpenAI answers legacy functions with: `message.function_call`,
`finish_reason: "function_call"`, unary and streamed. OpenAI's chat API takes the legacy fields
themselves, as sent."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import WEATHER_TOOL
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_bedrock_sdk import GOOD, PROFILE_ID
from tests.e2e.test_legacy_functions_native import NATIVE, native_config

FN: Any = WEATHER_TOOL["function"]
HELLO: Any = [{"role": "user", "content": "weather in Oslo?"}]
KINDS = [*NATIVE, "bedrock"]
# The legacy `function_call` → the `tool_choice` of the same request in tools (None: unsaid).
FORCED: Any = {"name": "get_weather"}
CHOICES: list[tuple[Any, Any]] = [
    ("auto", "auto"),
    ("none", "none"),
    (None, None),
    (FORCED, {"type": "function", "function": FORCED}),
]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = native_config(fake)
    out["providers"]["bed"] = {
        "kind": "bedrock",
        "base_url": fake.url,
        "region": "us-east-1",
        "keys": [GOOD],
    }
    out["models"]["bedrock"] = {"deployments": [{"provider": "bed", "model": PROFILE_ID}]}
    return await start_router(out)


def sent_body(fake: FakeUpstream) -> dict[str, Any]:
    record = fake.state.last()
    assert record is not None and record.status == 200, record
    return dict(record.body)


def legacy(choice: Any) -> dict[str, Any]:
    return {"functions": [FN]} | ({} if choice is None else {"function_call": choice})


def as_tools(choice: Any) -> dict[str, Any]:
    """The same request in tools; one call at a time, as legacy functions answer."""
    out: dict[str, Any] = {"tools": [WEATHER_TOOL], "parallel_tool_calls": False}
    return out | ({} if choice is None else {"tool_choice": choice})


@pytest.mark.parametrize(("function_call", "tool_choice"), CHOICES)
@pytest.mark.parametrize("model", KINDS)
async def test_functions_reach_the_upstream_as_the_tools_they_are(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, function_call: Any, tool_choice: Any
) -> None:
    await sdk.chat.completions.create(model=model, messages=HELLO, **legacy(function_call))
    sent = sent_body(fake)
    await sdk.chat.completions.create(model=model, messages=HELLO, **as_tools(tool_choice))
    expected = sent_body(fake)
    # The tool is declared there; but Converse has no "none": it is told by leaving tools out.
    declared = "get_weather" in json.dumps(expected)
    assert declared is not (model == "bedrock" and tool_choice == "none")
    assert sent == expected


@pytest.mark.parametrize("model", KINDS)
async def test_a_legacy_conversation_goes_as_tool_turns(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    """An assistant's `function_call` and the `function` message answering it: a tool call
    and its result (one id made up for both), as the same conversation in tools would go."""
    called = {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    conversation: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "function_call": called},
        {"role": "function", "name": "get_weather", "content": "sunny"},
    ]
    await sdk.chat.completions.create(model=model, messages=conversation, **legacy("auto"))
    sent = sent_body(fake)
    call_id = "call_function_1"
    call = {"id": call_id, "type": "function", "function": called}
    in_tools: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "name": "get_weather", "tool_call_id": call_id, "content": "sunny"},
    ]
    await sdk.chat.completions.create(model=model, messages=in_tools, **as_tools("auto"))
    assert sent == sent_body(fake)


@pytest.mark.parametrize("function_call", [None, FORCED])
@pytest.mark.parametrize("model", KINDS)
async def test_the_call_comes_back_as_a_legacy_function_call(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, function_call: Any
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    reply = await sdk.chat.completions.create(model=model, messages=HELLO, **legacy(function_call))
    [choice] = reply.choices
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None
    called = choice.message.function_call
    assert called is not None and called.name == "get_weather"
    assert json.loads(called.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize("function_call", ["auto", FORCED])
@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_call_comes_back_in_function_call_deltas(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, function_call: Any
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    stream = await sdk.chat.completions.create(
        model=model, messages=HELLO, stream=True, **legacy(function_call)
    )
    names, arguments, finishes = [], [], []
    async for chunk in stream:
        for choice in chunk.choices:
            assert choice.delta.tool_calls is None, chunk
            if choice.delta.function_call is not None:
                names.append(choice.delta.function_call.name)
                arguments.append(choice.delta.function_call.arguments or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert names[0] == "get_weather" and not any(names[1:]), names
    assert json.loads("".join(arguments)) == {"city": "Oslo"}
    assert finishes == ["function_call"]


async def test_openai_chat_takes_the_legacy_fields_as_sent(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(model="alpha/model-a", messages=HELLO, **legacy("auto"))
    sent = sent_body(fake)
    assert (sent["functions"], sent["function_call"]) == ([FN], "auto")
    assert "tools" not in sent and "parallel_tool_calls" not in sent


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", [*KINDS, "alpha/model-a"])
async def test_functions_beside_tools_are_openais_400_naming_functions(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, stream: bool
) -> None:
    """OpenAI refuses both at once; a kind that reads `tools` alone dropped the functions, so
    the model could never call one. Refused on every kind, before any upstream is asked."""
    both: Any = legacy("auto") | as_tools("auto")
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model=model, messages=HELLO, stream=stream, **both)
    error: Any = caught.value.body
    assert error["param"] == "functions", error
    assert "'functions' and 'tools'" in error["message"]
    assert fake.state.count() == 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", KINDS)
async def test_two_function_messages_answering_one_call_answer_two_calls(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, stream: bool
) -> None:
    """Two `function` messages after one legacy call (a retried function, a second result):
    each a tool result of its own id (Claude and Bedrock refuse two results of one id), the
    second answering a call made for it beside the first, as the same in tools would go."""
    called = {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    conversation: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "function_call": called},
        {"role": "function", "name": "get_weather", "content": "sunny"},
        {"role": "function", "name": "get_weather", "content": "rainy"},
    ]
    await _drained(sdk, model, conversation, stream, legacy("auto"))
    sent = sent_body(fake)
    first, second = "call_function_1", "call_function_1_3"
    calls = [{"id": i, "type": "function", "function": called} for i in (first, second)]
    in_tools: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "name": "get_weather", "tool_call_id": first, "content": "sunny"},
        {"role": "tool", "name": "get_weather", "tool_call_id": second, "content": "rainy"},
    ]
    await _drained(sdk, model, in_tools, stream, as_tools("auto"))
    assert sent == sent_body(fake)


async def _drained(
    sdk: openai.AsyncOpenAI, model: str, messages: Any, stream: bool, fields: dict[str, Any]
) -> None:
    """One call, a stream read to its end."""
    reply = await sdk.chat.completions.create(
        model=model, messages=messages, stream=stream, **fields
    )
    if stream:
        async for _ in reply:  # type: ignore[union-attr]
            pass


@pytest.mark.parametrize("model", KINDS)
async def test_a_function_message_answers_the_legacy_call_beside_tool_calls(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    """An assistant turn with tool calls and a legacy `function_call` (a history begun in
    tools, carried on in functions): the `function` message after the tool results answers
    the legacy call, not the first tool call (answered already: two results of one id)."""
    called = {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    earlier = {"id": "call_tool", "type": "function", "function": called}
    conversation: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [earlier], "function_call": called},
        {"role": "tool", "tool_call_id": "call_tool", "content": "sunny"},
        {"role": "function", "name": "get_weather", "content": "rainy"},
    ]
    await sdk.chat.completions.create(model=model, messages=conversation, **legacy("auto"))
    sent = sent_body(fake)
    legacy_call = {"id": "call_function_1", "type": "function", "function": called}
    in_tools: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [earlier, legacy_call]},
        {"role": "tool", "tool_call_id": "call_tool", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_function_1", "content": "rainy"},
    ]
    await sdk.chat.completions.create(model=model, messages=in_tools, **as_tools("auto"))
    assert sent == sent_body(fake)
