"""A Responses API conversation the router stores keeps one session from turn to turn, whether
its later turns continue it by `previous_response_id` or by `conversation`, with and without a
guardrail redacting its opening, answered at once or streamed (the real OpenAI SDK through
the edge)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.router_service.sessions.test_sticky_per_model import TRANSIENT_S, config

PII = [{"name": "pii", "detect": ["email"], "action": "redact"}]
OPENING = "Customer: jane@example.com"


@pytest.mark.parametrize("by", ["previous_response_id", "conversation"])
@pytest.mark.parametrize("redacted", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_every_turn_of_a_stored_conversation_is_one_session(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    by: str,
    redacted: bool,
    stream: bool,
) -> None:
    clock = ManualClock()
    settings = config(fake.base_url, {"backend": "memory"})
    if redacted:
        settings["guardrails"] = PII
    router = await start_router(settings, clock=clock)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        turn: dict[str, Any] = {}
        if by == "conversation":
            turn["conversation"] = (await sdk.conversations.create()).id
        previous = None
        served = []
        for text in (OPENING, "and then?", "and later?"):
            if by == "previous_response_id" and previous is not None:
                turn["previous_response_id"] = previous
            answer = await sdk.responses.with_raw_response.create(
                model="chat", input=text, stream=stream, **turn
            )
            previous = await _response_id(answer.parse(), stream)
            served.append(answer.headers["x-switchboard-deployment"])
            await router.runtime.afterwork.drain()
            clock.advance(TRANSIENT_S + 1)  # alpha serves again: only the sticky choice holds
    assert served == ["beta/model-b"] * 3
    opening = fake.state.calls()[-1].body["messages"][0]["content"]
    if isinstance(opening, list):  # a conversation's items: as parts
        opening = "".join(part["text"] for part in opening)
    assert opening == ("Customer: [REDACTED:email]" if redacted else OPENING)


async def _response_id(parsed: Any, stream: bool) -> str:
    """The id of a turn's Response, its events read to the end when streamed."""
    if not stream:
        return str(parsed.id)
    assert isinstance(parsed, openai.AsyncStream)
    found = ""
    async for event in parsed:
        if event.type == "response.completed":
            found = event.response.id
    assert found
    return found
