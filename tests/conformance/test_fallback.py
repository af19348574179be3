"""Failover across wire formats in one group: a deployment of one kind fails, a deployment of
another kind answers, and the caller sees one OpenAI-shaped answer (Anthropic → Gemini is the
issue's example; every kind is on each side of one pair)."""

from __future__ import annotations

import pytest

from clients.switchboard.v1 import chat_pb2, routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import chat, chunks, finish_reasons, params, stream, streamed_text
from tests.conformance.profiles import FALLBACK_PAIRS, mixed_config
from tests.conftest import RouterHandle, StartRouter


@pytest.fixture(params=FALLBACK_PAIRS, ids=lambda pair: f"{pair[0]}-to-{pair[1]}")
async def mixed(
    request: pytest.FixtureRequest, fake: FakeUpstream, start_router: StartRouter
) -> RouterHandle:
    first, second = request.param
    fake.state.set_scenario(Scenario.server_error(first.overloaded_status), model="m-first")
    return await start_router(mixed_config(fake, first, second))


async def test_chat_falls_over_to_another_format(mixed: RouterHandle, fake: FakeUpstream) -> None:
    response = await chat(mixed, params("mixed", stop=["END"], max_tokens=20))

    assert response.completion.choices[0].message.text == "Echo: hello there"
    assert response.completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert response.completion.usage.total_tokens > 0
    assert [(a.deployment, a.outcome) for a in response.route.attempts] == [
        ("first/m-first", routing_pb2.OUTCOME_UPSTREAM_ERROR),
        ("second/m-second", routing_pb2.OUTCOME_OK),
    ]
    assert [r.key for r in fake.state.calls()] == ["k-first", "k-second"]


async def test_stream_falls_over_to_another_format(mixed: RouterHandle) -> None:
    events = await stream(mixed, params("mixed", stream_options={"include_usage": True}))

    assert events[0].route.deployment == "second/m-second"
    assert streamed_text(events) == "Echo: hello there"
    assert finish_reasons(events) == [chat_pb2.FINISH_REASON_STOP]
    assert len({c.id for c in chunks(events)}) == 1
    assert events[-1].summary.usage.total_tokens > 0
