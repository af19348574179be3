"""RouterService over a real grpc.aio channel, against the fake upstream."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter, base_config


def chat_params(model: str = "chain", text: str = "hello there") -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(
        model=model,
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)],
    )


async def test_chat_answers_and_reports_the_route(router: RouterHandle, fake: FakeUpstream) -> None:
    response = await router.stub.Chat(pb.ChatRequest(params=chat_params()))

    assert response.completion.choices[0].message.text == "Echo: hello there"
    assert response.completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert response.completion.usage.total_tokens > 0
    assert response.route.deployment == "alpha/model-a"
    assert [a.outcome for a in response.route.attempts] == [routing_pb2.OUTCOME_OK]
    used = fake.state.calls(model="model-a")[0].key
    assert response.route.attempts[0].key_fingerprint == fingerprint(used)
    assert used not in str(response)


async def test_failover_on_5xx_shows_both_attempts(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), model="model-a")

    response = await router.stub.Chat(pb.ChatRequest(params=chat_params()))

    assert response.completion.choices[0].message.text == "Echo: hello there"
    assert response.route.deployment == "beta/model-b"
    assert [(a.deployment, a.outcome, a.upstream_status) for a in response.route.attempts] == [
        ("alpha/model-a", routing_pb2.OUTCOME_UPSTREAM_ERROR, 503),
        ("beta/model-b", routing_pb2.OUTCOME_OK, 200),
    ]


async def test_failover_on_connection_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = base_config(fake.base_url)
    # Port 9 on loopback: nothing listens there, the connection is refused at once.
    config["providers"]["alpha"]["base_url"] = "http://127.0.0.1:9/v1"
    router = await start_router(config)

    response = await router.stub.Chat(pb.ChatRequest(params=chat_params()))

    outcomes = [a.outcome for a in response.route.attempts]
    assert outcomes == [routing_pb2.OUTCOME_CONNECT_FAILED, routing_pb2.OUTCOME_OK]


async def test_callers_bad_request_is_returned_as_is(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    upstream_error = {
        "message": "Invalid value for 'temperature'",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }
    fake.state.set_scenario(Scenario(status=400, error_body={"error": upstream_error}))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=chat_params()))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "BAD_REQUEST"
    assert details.upstream_status == 400
    assert details.upstream_error == upstream_error
    assert fake.state.count(model="model-b") == 0  # no failover for the caller's own mistake


async def test_invalid_key_moves_to_the_next_key(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.invalid_key(), key="sk-alpha-1")

    for _ in range(4):
        response = await router.stub.Chat(pb.ChatRequest(params=chat_params()))
        assert response.route.deployment == "alpha/model-a"

    assert fake.state.count(key="sk-alpha-1") == 1  # disabled after its first failure
    assert fake.state.count(key="sk-alpha-2") == 4


async def test_all_keys_rate_limited_is_resource_exhausted_with_retry_info(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="7"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=chat_params()))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "RATE_LIMITED"
    assert details.retry_after_s == pytest.approx(7.0)


async def test_no_upstream_is_unavailable_and_says_not_to_retry_the_routing(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(500))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=chat_params()))

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # gRPC's server pushback: a client's retry policy (clients.RouterClient has one for calls no
    # router took) must not run the routing again.
    assert ("grpc-retry-pushback-ms", "-1") in tuple(caught.value.trailing_metadata())
    assert details_from_rpc_error(caught.value).reason == "UPSTREAM_ERROR"


async def test_unknown_model_is_not_found(router: RouterHandle) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=chat_params(model="nope")))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (details.reason, details.openai_code, details.openai_param) == (
        "MODEL_NOT_FOUND",
        "model_not_found",
        "model",
    )


async def test_empty_messages_is_invalid_argument(router: RouterHandle) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=chat_pb2.ChatParams(model="chain")))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(caught.value).openai_param == "messages"


async def test_stream_yields_route_chunks_and_summary(router: RouterHandle) -> None:
    params = chat_params(text="one two three")
    params.stream_options.include_usage = True

    events = [e async for e in router.stub.ChatStream(pb.ChatStreamRequest(params=params))]

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "route" and kinds[-1] == "summary"
    assert set(kinds[1:-1]) == {"chunk"}
    chunks = [e.chunk for e in events if e.HasField("chunk")]
    text = "".join(c.choices[0].delta.text for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert len({c.id for c in chunks}) == 1
    assert events[-1].summary.usage.completion_tokens == 4
    assert events[-1].summary.route.deployment == "alpha/model-a"


async def test_stream_fails_over_invisibly_before_first_chunk(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()  # the window ends when moved past it, once alpha's call is stalled
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["timeouts"] = {"first_chunk_s": 0.3}
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(stall_before_first_byte=True), model="model-a")

    async def read() -> list[pb.ChatStreamResponse]:
        return [e async for e in router.stub.ChatStream(pb.ChatStreamRequest(params=chat_params()))]

    streaming = asyncio.ensure_future(read())
    await fake.state.wait_for(lambda: fake.state.calls(model="model-a") != [])
    assert not streaming.done()
    clock.advance(0.31)  # the window was open before the request was sent
    events = await streaming

    assert events[0].route.deployment == "beta/model-b"
    assert [a.outcome for a in events[-1].summary.route.attempts] == [
        routing_pb2.OUTCOME_FIRST_CHUNK_TIMEOUT,
        routing_pb2.OUTCOME_OK,
    ]
    # The stalled upstream request was abandoned: its connection closed by the router.
    await fake.state.wait_for(lambda: fake.state.calls(model="model-a")[0].client_disconnected)
    assert await router.leases_held() == 0


async def test_stream_error_before_first_chunk_is_a_status(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="3"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=chat_params())):
            pass

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_embed_and_list_models(router: RouterHandle) -> None:
    response = await router.stub.Embed(
        pb.EmbedRequest(
            params=embeddings_pb2.EmbeddingParams(
                model="embedder", texts=embeddings_pb2.TextList(values=["a", "b"])
            )
        )
    )
    assert [len(e.values) for e in response.result.data] == [8, 8]
    assert response.route.deployment == "alpha/embed-a"

    models = await router.stub.ListModels(pb.ListModelsRequest())
    by_id = {m.id: m for m in models.models}
    assert by_id["chain"].kind == pb.MODEL_KIND_GROUP
    assert list(by_id["chain"].members) == ["alpha/model-a", "beta/model-b"]
    assert by_id["alpha/model-a"].kind == pb.MODEL_KIND_DEPLOYMENT


async def test_models_say_whether_they_serve_embeddings(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A group configured `embeddings: true`, its deployments, and a pool of only such groups
    are listed as serving embeddings; a pool with a chat group among its groups is not."""
    config = base_config(fake.base_url)
    embed = {"provider": "alpha", "model": "embed-x"}
    config["models"]["vectors"] = {"deployments": [embed], "embeddings": True}
    config["models"]["more"] = {"deployments": [embed], "embeddings": True}
    config["pools"] = {
        "embedders": {"groups": ["vectors", "more"]},
        "mixed": {"groups": ["chain", "vectors"]},
    }
    router = await start_router(config)

    async def embedders() -> set[str]:
        models = (await router.stub.ListModels(pb.ListModelsRequest())).models
        return {m.id for m in models if m.embeddings}

    assert await embedders() == {"vectors", "more", "embedders", "alpha/embed-x"}
    # A reload applies the flag: the pool of a group no longer saying it says it no more.
    config["models"]["vectors"]["embeddings"] = False
    await router.server.reload(SwitchboardConfig.model_validate({"auth": {"open": True}, **config}))
    assert await embedders() == {"more", "alpha/embed-x"}


async def test_health_serving(router: RouterHandle) -> None:
    health = health_pb2_grpc.HealthStub(router.channel)
    reply = await health.Check(
        health_pb2.HealthCheckRequest(service="switchboard.v1.RouterService")
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
