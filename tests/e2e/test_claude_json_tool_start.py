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

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_claude_json_schema_tool import ANSWER, FORMAT
from tests.e2e.test_reasoning_sdk import IAM
from tests.helpers import eventually

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
