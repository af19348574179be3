"""An OpenAI-compatible upstream whose streamed tool calls carry no `index` (Gemini's
OpenAI-compatible endpoint: each call whole in a delta of its own, told apart by its `id`):
parallel calls reach a chat stream each at an index of its own, and a Responses stream as one
`function_call` item each, as the unary answer has them. They were one call whose arguments
joined both (`{"city":"Paris"}{"city":"Rome"}`), named after the first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.helpers import serve_app

WEATHER = {"name": "weather", "arguments": '{"city":"Paris"}'}
TIME = {"name": "time", "arguments": '{"city":"Rome"}'}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "g",
        "choices": [choice],
    }


# What Gemini's OpenAI-compatible endpoint streams for two parallel calls: no `index`; the
# second call's arguments, in a delta of no id, are that call's (the one last named).
def call(function: dict[str, str], **said: str) -> dict[str, Any]:
    return {"tool_calls": [{**said, "function": function}]}


CHUNKS = [
    chunk({"role": "assistant", **call(WEATHER, id="call_1", type="function")}),
    chunk(call({**TIME, "arguments": ""}, id="call_2", type="function")),
    chunk(call({"arguments": TIME["arguments"]})),
    chunk({}, "tool_calls"),
]


async def chat(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for event in CHUNKS:
        await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


@pytest.fixture
async def sdk(
    start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[openai.AsyncOpenAI]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async with serve_app(app) as base_url:
        edge = await start_edge(await start_router(base_config(f"{base_url}/v1")))
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        ) as client:
            yield client


async def test_a_chat_stream_gets_each_call_its_index(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="chain", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    async for part in stream:
        for call in (part.choices[0].delta.tool_calls or ()) if part.choices else ():
            assert call.index is not None and call.function is not None
            said = calls.setdefault(call.index, {"name": "", "arguments": ""})
            said["name"] += call.function.name or ""
            said["arguments"] += call.function.arguments or ""
    assert calls == {0: WEATHER, 1: TIME}


async def test_a_responses_stream_has_one_item_per_call(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model="chain", input="hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()

    said = [(i.call_id, i.name, i.arguments) for i in final.output if i.type == "function_call"]
    assert said == [("call_1", *WEATHER.values()), ("call_2", *TIME.values())]
