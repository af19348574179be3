"""A streamed `json_schema` answer at a Claude older than 4.5 comes as a forced tool's input
(providers/_json_tool.py), which Claude streams a whole key and value at a time: a long first
value keeps the first input_json_delta back. The tool's start is the answer's: it commits the
stream as a visible tool call's start does (the stall window then runs, not the first-chunk
window), shown as the object's opening `{` (its input is always an object). The router runs on
a ManualClock: the first-chunk window passes while the fake upstream holds the rest back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from aiohttp import web

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_claude_json_schema_tool import ANSWER, FORMAT
from tests.e2e.test_reasoning_sdk import IAM
from tests.helpers import eventually, serve_app

HELLO: Any = [{"role": "user", "content": "hello"}]
WINDOW_S = 1.0  # first_chunk_s; stall_s is ten of them
MODELS = {"claude": "claude-3-5-haiku-20241022", "br": "anthropic.claude-3-5-haiku-20241022-v1:0"}
# Events up to the tool's start: message_start, ping, content_block_start (Anthropic);
# messageStart, contentBlockStart (Converse).
UP_TO_THE_START = {"claude": 3, "br": 2}


@pytest.mark.parametrize("provider", ["claude", "br"])
async def test_the_json_tools_start_commits_the_stream(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, provider: str
) -> None:
    clock = ManualClock()
    config = base_config(fake.base_url)
    timeouts = {"first_chunk_s": WINDOW_S, "stall_s": 10 * WINDOW_S}
    config["providers"] |= {
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "br": {
            "kind": "bedrock",
            "base_url": fake.url,
            "region": "us-east-1",
            "keys": [IAM],
        },
    }
    config["providers"][provider]["timeouts"] = timeouts
    config["models"]["haiku"] = {"deployments": [{"provider": provider, "model": MODELS[provider]}]}
    edge = await start_edge(await start_router(config, clock=clock))
    held = UP_TO_THE_START[provider]
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=ANSWER, held_after_chunks=held))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=20
    ) as sdk:
        opening = asyncio.ensure_future(
            sdk.chat.completions.create(
                model="haiku", messages=HELLO, response_format=FORMAT, stream=True
            )
        )

        async def committed() -> bool:
            return opening.done()

        await eventually(committed, within=5, what="the stream committed at the tool's start")
        stream = opening.result()
        clock.advance(2 * WINDOW_S)  # past the first-chunk window: no longer the one that runs
        fake.state.release()
        chunks = [c async for c in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == ANSWER
    assert all(c.choices[0].delta.tool_calls is None for c in chunks if c.choices)
    assert fake.state.count() == 1  # neither failed over nor asked again


# Claude's answer when it calls the forced tool twice (tool_choice forces the tool, not one
# call of it): two `json_output` tool_use blocks.
TWICE = ({"city": "Paris"}, {"city": "Lyon"})


def _twice_events() -> list[dict[str, Any]]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODELS["claude"]}
    usage = {"input_tokens": 5}
    start: dict[str, Any] = {**message, "content": [], "stop_reason": None, "usage": usage}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, value in enumerate(TWICE):
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": "json_output", "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(value)}
        events += [
            {"type": "content_block_start", "index": index, "content_block": block},
            {"type": "content_block_delta", "index": index, "delta": delta},
            {"type": "content_block_stop", "index": index},
        ]
    ended = {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}
    return [*events, {**ended, "usage": {"output_tokens": 9}}, {"type": "message_stop"}]


async def _messages(request: web.Request) -> web.StreamResponse:
    if not (await request.json()).get("stream"):
        blocks = [
            {"type": "tool_use", "id": f"toolu_{i}", "name": "json_output", "input": value}
            for i, value in enumerate(TWICE)
        ]
        message = {"id": "msg_1", "type": "message", "role": "assistant", "content": blocks}
        usage = {"input_tokens": 5, "output_tokens": 9}
        answer = {**message, "model": MODELS["claude"], "stop_reason": "tool_use"}
        return web.json_response({**answer, "stop_sequence": None, "usage": usage})
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for event in _twice_events():
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
    return response


async def test_a_second_call_of_the_json_tool_is_no_tool_call_to_the_caller(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The caller offered no tool: whatever Claude says through `json_output`, a second call
    of it too, is said as content, streamed as the unary answer says it."""
    app = web.Application()
    app.router.add_post("/v1/messages", _messages)
    async with serve_app(app) as url:
        config = base_config(fake.base_url)
        claude = {"kind": "anthropic", "base_url": f"{url}/v1", "keys": ["sk-a"]}
        config["providers"]["claude"] = claude
        config["models"]["haiku"] = {
            "deployments": [{"provider": "claude", "model": MODELS["claude"]}]
        }
        edge = await start_edge(await start_router(config))
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        ) as sdk:
            unary = await sdk.chat.completions.create(
                model="haiku", messages=HELLO, response_format=FORMAT
            )
            stream = await sdk.chat.completions.create(
                model="haiku", messages=HELLO, response_format=FORMAT, stream=True
            )
            chunks = [c async for c in stream]

    assert unary.choices[0].message.tool_calls is None
    assert all(c.choices[0].delta.tool_calls is None for c in chunks if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert _objects(text) == _objects(unary.choices[0].message.content or "") == list(TWICE)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def _objects(text: str) -> list[Any]:
    """The JSON values `text` says one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found
