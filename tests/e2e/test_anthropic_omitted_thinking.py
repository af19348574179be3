"""Claude thinking longer than the first-chunk window with its thinking text omitted
(`thinking.display: "omitted"`, the default of recent Claude models): the thinking block streams
signature-only, so until it ends only events that map to no chunk come (`ping`, the block's
start, its `signature_delta`). They show the upstream at work: the window starts again at each,
nothing of them reaches the caller, and the stream is neither cut nor failed over. The router
runs on a ManualClock and the fake upstream sends its events a step at a time, the clock moved
on by less than the window before each (tests/e2e/stepped.py): the steps add up to more than the
window before the first chunk with something in it (the thinking block, whole, at its end)."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._anthropic import FAKE_SIGNATURE
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stepped import step_past_the_window

HELLO: Any = [{"role": "user", "content": "hello"}]
# The window; the thinking block ends four steps (ping, the block's start, its signature, its
# end) after message_start, 0.8 of the window each.
WINDOW_S = 1.0
STEPS = 4
OMITTED = {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter, clock: ManualClock) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": fake.base_url,
        "keys": ["sk-ant"],
        "timeouts": {"first_chunk_s": WINDOW_S, "stall_s": WINDOW_S},
    }
    config["models"]["sonnet"] = {
        "deployments": [{"provider": "claude", "model": "claude-sonnet-4-5"}]
    }
    return await start_router(config, clock=clock)


async def test_pings_keep_a_stream_thinking_with_its_text_omitted_waiting(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, clock: ManualClock
) -> None:
    fake.state.set_scenario(Scenario(reasoning="thinking it over", stepped_chunks=STEPS))

    async def read() -> list[Any]:
        stream = await sdk.chat.completions.create(
            model="sonnet",
            messages=HELLO,
            stream=True,
            max_tokens=4096,
            extra_body={"thinking": OMITTED},
        )
        return [chunk async for chunk in stream]

    reading = asyncio.ensure_future(read())
    await step_past_the_window(fake, clock, WINDOW_S, STEPS, reading)
    chunks = await asyncio.wait_for(reading, 15)

    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Echo: hello"
    blocks = [b for d in deltas for b in (d.model_extra or {}).get("thinking_blocks") or ()]
    signed = {"type": "thinking", "thinking": "", "signature": FAKE_SIGNATURE}
    assert blocks == [{"index": 0, **signed}]  # whole, to hand back
    assert not any((d.model_extra or {}).get("reasoning_content") for d in deltas)
    assert fake.state.count(model="claude-sonnet-4-5") == 1  # not failed over, not tried again
