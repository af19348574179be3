"""A Responses-only model that reasons longer than the first-chunk window before its first words
(gpt-5-pro may think for minutes): the Responses stream's progress events (`response.in_progress`,
a reasoning item added, a summary part opened…) show the upstream at work, so the window starts
again at each; nothing of them reaches the caller, and the stream is neither cut nor failed
over. The router runs on a ManualClock and the fake upstream sends its events a step at a time:
before each, the test moves the clock on by less than the window, once the router has started the
window again at the one before; the steps add up to more than the window before the first words."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stepped import step_past_the_window

HELLO: Any = [{"role": "user", "content": "hello"}]
# The window; the first words come four steps (after created: in_progress, the reasoning item
# added, its summary part added, the first words) after the start, 0.8 of the window each.
WINDOW_S = 1.0
STEPS = 4


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter, clock: ManualClock) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["timeouts"] = {"first_chunk_s": WINDOW_S, "stall_s": WINDOW_S}
    config["models"]["pro"] = {"deployments": [{"provider": "alpha", "model": "gpt-5-pro"}]}
    return await start_router(config, clock=clock)


@pytest.mark.parametrize("hidden", [False, True])
async def test_progress_events_keep_a_long_reasoning_stream_waiting(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, clock: ManualClock, hidden: bool
) -> None:
    """`hidden`: the caller asked not to see the reasoning (the opening reads on past it)."""
    fake.state.set_scenario(Scenario(reasoning="thinking it over", stepped_chunks=STEPS))
    extra = {"reasoning": {"exclude": True}} if hidden else None

    async def read() -> list[Any]:
        stream = await sdk.chat.completions.create(
            model="pro",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            reasoning_effort="high",
            extra_body=extra,
        )
        return [chunk async for chunk in stream]

    reading = asyncio.ensure_future(read())
    await step_past_the_window(fake, clock, WINDOW_S, STEPS, reading)
    chunks = await asyncio.wait_for(reading, 15)

    *answer, usage = chunks
    assert usage.usage is not None and not usage.choices
    assert all(c.choices for c in answer)  # no empty chunk for a progress event
    deltas = [c.choices[0].delta for c in answer]
    assert "".join(d.content or "" for d in deltas) == "Echo: hello"
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == ("" if hidden else "thinking it over")
    # No empty chunk for a progress event: each says something (its role, words, the finish).
    said = [d.role or d.content or (d.model_extra or {}).get("reasoning_content") for d in deltas]
    assert all(said[:-1]) and answer[-1].choices[0].finish_reason == "stop"
    assert fake.state.count(model="gpt-5-pro") == 1  # not failed over, not tried again
