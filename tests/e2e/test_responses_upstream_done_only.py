"""A Responses API upstream that says a call's arguments (a custom call's input) whole in its
done events, with no delta before them, as gpt-5.3-codex-spark streams its calls: the call
reaches every streamed entrance with them, once (they were dropped: a call with `""`). So too
when a delta of empty text comes before them (it said nothing: they were dropped likewise)."""

from __future__ import annotations

import dataclasses
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.codex_turns import GROUPS, OPENING, PATCH, streamed
from tests.e2e.codex_turns import config as codex_config

TOOLS: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
CHAT_TOOLS: Any = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
]
ARGUMENTS = '{"q":"x"}'


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = codex_config(fake)
    out["models"]["pro"] = {"deployments": [{"provider": "alpha", "model": "gpt-5-pro"}]}
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture(autouse=True)
def done_only(fake: FakeUpstream) -> None:
    fake.state.set_scenario(
        Scenario(tool_call=True, tool_arguments={"q": "x"}, call_input_on_done=True)
    )


@pytest.fixture(params=[False, True], ids=["no-delta", "empty-delta"])
def empty_delta(request: pytest.FixtureRequest, fake: FakeUpstream) -> bool:
    """Whether a delta of empty text comes before the done events (the scenario set so)."""
    said = Scenario(tool_call=True, tool_arguments={"q": "x"}, call_input_on_done=True)
    fake.state.set_scenario(dataclasses.replace(said, call_empty_delta=request.param))
    return bool(request.param)


@pytest.mark.usefixtures("empty_delta")
async def test_a_chat_stream_gets_the_arguments(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="pro", messages=[{"role": "user", "content": "hi"}], tools=CHAT_TOOLS, stream=True
    )
    pieces = [
        call.function.arguments or ""
        async for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or ()
        if call.function is not None
    ]
    assert "".join(pieces) == ARGUMENTS


@pytest.mark.usefixtures("empty_delta")
async def test_a_responses_stream_gets_the_arguments(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model="pro", input="hi", tools=TOOLS) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()

    [call] = [item for item in final.output if item.type == "function_call"]
    assert (call.name, call.arguments) == ("lookup", ARGUMENTS)
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == ARGUMENTS
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == ARGUMENTS


async def test_a_unary_answer_had_them_already(sdk: openai.AsyncOpenAI) -> None:
    answer = await sdk.responses.create(model="pro", input="hi", tools=TOOLS)

    [call] = [item for item in answer.output if item.type == "function_call"]
    assert call.arguments == ARGUMENTS


async def test_a_custom_call_gets_its_input(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, empty_delta: bool
) -> None:
    model, patching = GROUPS["codex-responses"]
    done_only = dataclasses.replace(patching, call_input_on_done=True)
    fake.state.set_scenario(dataclasses.replace(done_only, call_empty_delta=empty_delta))
    events, first = await streamed(sdk, "codex-responses", OPENING)

    [call] = [item for item in first.output if item.type == "custom_tool_call"]
    assert call.input == PATCH
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH
    assert fake.state.calls(model=model)[-1].path == "/v1/responses"


async def test_an_empty_delta_before_the_whole_says_it_once(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The empty delta, then one of the whole, then the done event: said once, not twice."""
    fake.state.set_scenario(
        Scenario(tool_call=True, tool_arguments={"q": "x"}, call_empty_delta=True)
    )
    async with sdk.responses.stream(model="pro", input="hi", tools=TOOLS) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()

    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.arguments == ARGUMENTS
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == ARGUMENTS
