"""Failover across wire formats in one group: a deployment of one kind fails, a deployment of
another kind answers, and the caller sees one OpenAI-shaped answer (Anthropic → Gemini is the
issue's example; every kind is on each side of one pair)."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import (
    AUDIO_PART,
    chat,
    chunks,
    finish_reasons,
    params,
    stream,
    streamed_text,
)
from tests.conformance.profiles import BY_KIND, FALLBACK_PAIRS, Profile, mixed_config
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


def _audio(model: str) -> chat_pb2.ChatParams:
    content = [{"type": "text", "text": "listen"}, AUDIO_PART]
    return params(model, messages=[{"role": "user", "content": content}])


async def _failed(
    router: RouterHandle, p: chat_pb2.ChatParams, deadline_s: float | None = None
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=p), timeout=deadline_s)
    return caught.value


@pytest.mark.parametrize(
    ("first", "second"),
    [(BY_KIND["openai"], BY_KIND["anthropic"]), (BY_KIND["anthropic"], BY_KIND["openai"])],
    ids=["failing-first", "failing-second"],
)
async def test_a_deployment_that_cannot_take_it_does_not_hide_a_real_failure(
    fake: FakeUpstream, start_router: StartRouter, first: Profile, second: Profile
) -> None:
    """Claude cannot take audio; the OpenAI deployment that can is down: the caller hears of
    the outage (worth a retry), not a 400 telling it to change a request that is fine."""
    failing = "m-first" if first.kind == "openai" else "m-second"
    fake.state.set_scenario(Scenario.server_error(503), model=failing)
    router = await start_router(mixed_config(fake, first, second))

    error = await _failed(router, _audio("mixed"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert details_from_rpc_error(error).reason == "UPSTREAM_ERROR"
    assert [r.model for r in fake.state.calls()] == [failing]


async def test_deployments_of_several_kinds_each_say_what_they_lack(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(mixed_config(fake, BY_KIND["anthropic"], BY_KIND["cohere"]))

    error = await _failed(router, _audio("mixed"))

    details = details_from_rpc_error(error)
    assert (error.code(), details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_INPUT")
    assert details.message.startswith("No deployment of `mixed` takes this request: ")
    assert "anthropic takes no audio" in details.message
    assert "cohere takes text and image_url" in details.message
    assert fake.state.count() == 0


async def test_no_key_or_rate_window_is_spent_where_the_request_cannot_go(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Claude's one-request-a-minute key is not leased for audio it cannot take: it still
    serves the next request that it can."""
    config = mixed_config(fake, BY_KIND["anthropic"], BY_KIND["openai"])
    config["providers"]["first"]["keys"] = [{"key": "k-first", "rpm": 1}]
    config["models"]["claude"] = {"deployments": [{"provider": "first", "model": "m-first"}]}
    router = await start_router(config)

    for _ in range(2):
        response = await chat(router, _audio("mixed"))
        assert response.route.deployment == "second/m-second"
    response = await chat(router, params("claude"))

    assert response.route.deployment == "first/m-first"
    assert [r.model for r in fake.state.calls()] == ["m-second", "m-second", "m-first"]


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


async def test_a_cooling_deployment_that_could_take_it_makes_it_a_wait_not_a_400(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The OpenAI deployment that takes audio is cooling after an outage; Claude cannot take it:
    the request is fine and can be served later, so the caller is told when, not to change it."""
    fake.state.set_scenario(Scenario.server_error(503), model="m-first")
    router = await start_router(mixed_config(fake, BY_KIND["openai"], BY_KIND["anthropic"]))
    assert (await chat(router, params("mixed"))).route.deployment == "second/m-second"

    error = await _failed(router, _audio("mixed"))

    details = details_from_rpc_error(error)
    assert (error.code(), details.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "NO_CAPACITY")
    assert "first/m-first (cooldown)" in details.message
    assert details.retry_after_s is not None and 0 < details.retry_after_s <= 15
    assert [r.model for r in fake.state.calls()] == ["m-first", "m-second"]


@pytest.mark.parametrize(
    ("failure", "code", "retry_after_s"),
    [
        (Scenario.invalid_key(), grpc.StatusCode.UNAVAILABLE, None),
        (Scenario.rate_limited(retry_after="60"), grpc.StatusCode.RESOURCE_EXHAUSTED, 60.0),
    ],
    ids=["key-disabled", "key-cooling-60s"],
)
async def test_a_cooling_deployment_that_could_take_it_is_told_by_its_keys(
    fake: FakeUpstream,
    start_router: StartRouter,
    failure: Scenario,
    code: grpc.StatusCode,
    retry_after_s: float | None,
) -> None:
    """The OpenAI deployment that takes audio cools 15 s after an outage, and its only key is
    then refused (a 401: disabled till a probe) or rate-limited for 60 s; Claude cannot take
    audio. Nothing serves when the cooldown ends: the caller gets the 503 of every key
    disabled, or the keys' 60 s, not a 429 saying 15 s."""
    fake.state.set_scenario(Scenario.server_error(503), model="m-first")
    router = await start_router(mixed_config(fake, BY_KIND["openai"], BY_KIND["anthropic"]))
    assert (await chat(router, params("mixed"))).route.deployment == "second/m-second"
    fake.state.set_scenario(failure, model="m-first")
    # Deadlines shorter than the 15 s cooldown: tried (or answered) at once, not after it.
    await _failed(router, params("first/m-first", text="tried while it cools"), deadline_s=10)
    assert [r.model for r in fake.state.calls()] == ["m-first", "m-second", "m-first"]

    error = await _failed(router, _audio("mixed"), deadline_s=10)

    details = details_from_rpc_error(error)
    assert (error.code(), details.reason) == (code, "NO_CAPACITY")
    assert "first/m-first (cooldown)" in details.message
    assert details.retry_after_s == pytest.approx(retry_after_s, abs=1.0)
    assert fake.state.count() == 3  # nobody called for the audio
