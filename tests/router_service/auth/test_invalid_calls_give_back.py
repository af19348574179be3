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
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

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
