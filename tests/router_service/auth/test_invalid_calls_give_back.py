"""A call the router refuses as invalid (`refused_as_invalid`: a chat no upstream body can be
written from, one no deployment can express) reached no upstream: its place in the caller's rpm
goes back as its estimate does (`Admission.give_back`, the store's un-count), on one process's
memory and on Redis. Before, every such 400 kept its rpm place, and a caller's few bad requests
got its next good ones 429."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config
from tests.router_service.server.test_rerank_rpc import config as rerank_config
from tests.router_service.server.test_rerank_rpc import rerank

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

KEY = "sk-alice-invalid-0123"
RPM = 2


def _invalid() -> pb.ChatRequest:
    """No message: no upstream body can be written from it (its handler's 400)."""
    request = chat(max_tokens=500)
    del request.params.messages[:]
    return request


def _inexpressible() -> pb.ChatRequest:
    """Stops past the OpenAI cap (4): every deployment passes it over before a key is leased."""
    request = chat(max_tokens=500)
    request.params.stop_list.values.extend(["a", "b", "c", "d", "e" * 300])
    return request


async def _refused(call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # not 429


@pytest.mark.parametrize("limits", [{"rpm": RPM}, {"rpm": RPM, "tpm": 100_000}])
async def test_calls_refused_as_invalid_give_their_rpm_place_back(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    limits: dict[str, int],
) -> None:
    config = guarded_config(fake.base_url, client("alice", KEY, **limits), state=state_section)
    router = await start_router(config, clock=ManualClock())  # one minute all along
    for request in (_invalid(), _inexpressible()):
        for _ in range(RPM):
            await _refused(router.stub.Chat(request, metadata=bearer(KEY)))
            streamed = router.stub.ChatStream(
                pb.ChatStreamRequest(params=request.params), metadata=bearer(KEY)
            )
            await _refused(anext(aiter(streamed)))
    assert not fake.state.calls()  # none reached an upstream
    for _ in range(RPM):  # the minute's places are all still free
        await router.stub.Chat(chat(), metadata=bearer(KEY))
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await router.stub.Chat(chat(), metadata=bearer(KEY))
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # rpm still holds


@pytest.mark.parametrize("model", ["voyage", "mixed"])
async def test_a_call_an_upstream_refused_keeps_its_rpm_place(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str], model: str
) -> None:
    # Its one deployment (voyage), or the one a Gemini deployment's passing over leads to
    # (mixed: the refusal names both), answers 404 at /rerank: the caller's 400, as for a
    # request no deployment can express, but this one reached an upstream (a call on its key):
    # its tokens go back, its rpm place stays, else a caller looping on such calls is never
    # limited (each one an upstream call).
    limited = client("alice", KEY, rpm=RPM, tpm=100_000)
    config = rerank_config(fake, limited, state=state_section)
    deployments = [
        {"provider": "gem", "model": "gemini-x"},
        {"provider": "beta", "model": "rerank-2"},
    ]
    config["models"]["mixed"] = {"deployments": deployments}
    router = await start_router(config)
    fake.state.set_scenario(Scenario.server_error(404), model="rerank-2")
    for _ in range(RPM):
        await _refused(router.stub.Media(rerank(model), metadata=bearer(KEY)))
    assert len(fake.state.calls()) == RPM
    with pytest.raises(grpc.aio.AioRpcError) as limited_call:
        await router.stub.Media(rerank(model), metadata=bearer(KEY))
    assert limited_call.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(fake.state.calls()) == RPM  # the caller's rpm held it back


@pytest.mark.parametrize("limits", [{"rpm": RPM}, {"rpm": RPM, "tpm": 100_000}])
async def test_a_stream_an_upstream_refused_keeps_its_rpm_place(
    fake: FakeUpstream, start_router: StartRouter, limits: dict[str, int]
) -> None:
    # The Responses API's 400 naming logprobs: an UNSUPPORTED_INPUT, so the caller's 400, but a
    # call was made (rpm counted only: no settlement; with tpm: `Used`'s).
    config = guarded_config(fake.base_url, client("alice", KEY, **limits))
    hosted = {"provider": "alpha", "model": "house-reasoner", "api": "responses"}
    config["models"]["reasoner"] = {"deployments": [hosted]}
    router = await start_router(config, clock=ManualClock())
    said = {"message": "logprobs are not supported with this model", "param": "logprobs"}
    fake.state.set_scenario(Scenario(status=400, error_body={"error": said}))
    params = chat("reasoner", logprobs=True).params
    for _ in range(RPM):
        streamed = router.stub.ChatStream(pb.ChatStreamRequest(params=params), metadata=bearer(KEY))
        await _refused(anext(aiter(streamed)))
    assert len(fake.state.calls()) == RPM
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await router.stub.Chat(chat(), metadata=bearer(KEY))
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
