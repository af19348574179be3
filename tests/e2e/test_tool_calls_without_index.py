"""An OpenAI-compatible upstream whose streamed tool calls carry no `index` (Gemini's
OpenAI-compatible endpoint: each call whole in a delta of its own, told apart by its `id`):
parallel calls reach a chat stream each at an index of its own, and a Responses stream as one
`function_call` item each, as the unary answer has them. They were one call whose arguments
joined both (`{"city":"Paris"}{"city":"Rome"}`), named after the first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.conftest import StartRouter
from tests.e2e.chat_script import call, chunk, scripted_sdk
from tests.e2e.stream_harness import StartEdge

WEATHER = {"name": "weather", "arguments": '{"city":"Paris"}'}
TIME = {"name": "time", "arguments": '{"city":"Rome"}'}


# What Gemini's OpenAI-compatible endpoint streams for two parallel calls: no `index`; the
# second call's arguments, in a delta of no id, are that call's (the one last named).
CHUNKS = [
    chunk({"role": "assistant", **call(WEATHER, id="call_1", type="function")}),
    chunk(call({**TIME, "arguments": ""}, id="call_2", type="function")),
    chunk(call({"arguments": TIME["arguments"]})),
    chunk({}, "tool_calls"),
]


@pytest.fixture
async def sdk(
    start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[openai.AsyncOpenAI]:
    async with scripted_sdk(CHUNKS, start_router, start_edge) as client:
        yield client


async def test_a_chat_stream_gets_each_call_its_index(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="chain", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    async for part in stream:
        for piece in (part.choices[0].delta.tool_calls or ()) if part.choices else ():
            assert piece.index is not None and piece.function is not None
            said = calls.setdefault(piece.index, {"name": "", "arguments": ""})
            said["name"] += piece.function.name or ""
            said["arguments"] += piece.function.arguments or ""
    assert calls == {0: WEATHER, 1: TIME}


async def test_a_responses_stream_has_one_item_per_call(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model="chain", input="hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()

    said = [(i.call_id, i.name, i.arguments) for i in final.output if i.type == "function_call"]
    assert said == [("call_1", *WEATHER.values()), ("call_2", *TIME.values())]
