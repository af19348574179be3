"""A conversation named by its opening, whose opening a rule redacts, stays one conversation
from turn to turn over the Responses API: its later turns (`previous_response_id`) send the
opening as it was stored, redacted, and must still name the conversation its first turn named
(the real OpenAI SDK through the edge)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.router_service.sessions.test_sticky_per_model import TRANSIENT_S, config

PII = [{"name": "pii", "detect": ["email"], "action": "redact"}]


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_stored_responses_next_turn_keeps_its_conversations_deployment(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any, stream: bool, background: bool
) -> None:
    clock = ManualClock()
    settings = {**config(fake.base_url, {"backend": "memory"}), "guardrails": PII}
    router = await start_router(settings, clock=clock)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        first = await _first_turn(sdk, background)
        assert fake.state.calls()[-1].model == "model-b"
        await router.runtime.afterwork.drain()
        clock.advance(TRANSIENT_S + 1)  # alpha serves again: only the sticky choice holds
        again = await sdk.responses.with_raw_response.create(
            model="chat", input="and then?", previous_response_id=first, stream=stream
        )
        if stream:
            events = again.parse()
            assert isinstance(events, openai.AsyncStream)
            async for _ in events:
                pass
    sent = fake.state.calls()[-1].body["messages"]
    assert sent[0]["content"] == "Customer: [REDACTED:email]"
    assert again.headers["x-switchboard-deployment"] == "beta/model-b"


@pytest.mark.parametrize("background", [False, True])
async def test_two_stored_conversations_a_rule_redacts_alike_stay_two(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any, background: bool
) -> None:
    # Named by their openings as stored, "Customer: [REDACTED:email]" both, they were one
    # conversation: bob's turns went where jane's stuck.
    clock = ManualClock()
    settings = {**config(fake.base_url, {"backend": "memory"}), "guardrails": PII}
    router = await start_router(settings, clock=clock)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        jane = await _first_turn(sdk, background)
        assert fake.state.calls()[-1].model == "model-b"  # jane's conversation sticks there
        await router.runtime.afterwork.drain()
        clock.advance(TRANSIENT_S + 1)  # alpha serves again: only the sticky choice holds
        bob = await _first_turn(sdk, background, "Customer: bob@example.com")
        assert fake.state.calls()[-1].model == "model-a"
        await router.runtime.afterwork.drain()
        served = {}
        for name, first in (("jane", jane), ("bob", bob)):
            again = await sdk.responses.with_raw_response.create(
                model="chat", input="and then?", previous_response_id=first
            )
            served[name] = again.headers["x-switchboard-deployment"]
    assert served == {"jane": "beta/model-b", "bob": "alpha/model-a"}


async def _first_turn(
    sdk: openai.AsyncOpenAI, background: bool, opening: str = "Customer: jane@example.com"
) -> str:
    """The id of the conversation's first turn, stored: answered at once, or in the background
    (the router runs it: its session named as the edge said)."""
    if not background:
        return (await sdk.responses.create(model="chat", input=opening, store=True)).id
    first = await sdk.responses.create(model="chat", input=opening, background=True)

    async def done() -> bool:
        return (await sdk.responses.retrieve(first.id)).status == "completed"

    await eventually(done, what="the background response answered")
    return first.id
