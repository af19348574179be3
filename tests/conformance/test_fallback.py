"""Failover across wire formats in one group: a deployment of one kind fails, a deployment of
another kind answers, and the caller sees one OpenAI-shaped answer (Anthropic → Gemini is the
issue's example; every kind is on each side of one pair)."""

from __future__ import annotations

import pytest

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import chat, chunks, finish_reasons, params, stream, streamed_text
from tests.conformance.profiles import BY_KIND, FALLBACK_PAIRS, mixed_config
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


async def test_an_embedding_moves_past_a_provider_without_embeddings(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Anthropic has no embeddings API: its adapter finds out inside the attempt (a key was
    leased, nothing sent), and the Outcome table moves the request on."""
    router = await start_router(mixed_config(fake, BY_KIND["anthropic"], BY_KIND["openai"]))
    request = embeddings_pb2.EmbeddingParams(model="mixed", text="alpha")

    response = await router.stub.Embed(pb.EmbedRequest(params=request))

    assert response.route.deployment == "second/m-second"
    assert [a.outcome for a in response.route.attempts] == [
        routing_pb2.OUTCOME_UNSUPPORTED_INPUT,
        routing_pb2.OUTCOME_OK,
    ]
    assert [r.path for r in fake.state.calls()] == ["/v1/embeddings"]
