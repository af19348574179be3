"""A Realtime session or WebRTC call the router refuses after admitting it (its model has no
deployment marked realtime: every one passed over before a key was leased, INVALID_ARGUMENT; or
a model it does not know, NOT_FOUND) reached no upstream: as any call refused as invalid
(`refused_as_invalid`), its place in the caller's rpm goes back (`Admission.give_back`).
Before, a session's few bad opens got the caller's next good calls 429."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import bearer, chat, client
from tests.router_service.server.test_realtime_rpc import realtime_config

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(30)

KEY = "sk-alice-realtime-0123"
RPM = 2
REFUSED = {"chain": grpc.StatusCode.INVALID_ARGUMENT, "no-such-model": grpc.StatusCode.NOT_FOUND}


async def _router(
    fake: FakeUpstream, start_router: StartRouter, state: dict[str, str]
) -> RouterHandle:
    """A router with realtime deployments and alice's rpm and tpm, its minute all along."""
    caller = client("alice", KEY, rpm=RPM, tpm=10_000)
    config = realtime_config(fake, auth={"clients": [caller]}, state=state)
    return await start_router(config, clock=ManualClock())


async def _still_free(router: Any) -> None:
    """The minute's rpm places are all still free: RPM good calls pass, the next is limited."""
    for _ in range(RPM):
        await router.stub.Chat(chat(), metadata=bearer(KEY))
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await router.stub.Chat(chat(), metadata=bearer(KEY))
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # rpm still holds


@pytest.mark.parametrize("model", sorted(REFUSED))
async def test_refused_realtime_sessions_give_their_rpm_place_back(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str], model: str
) -> None:
    router = await _router(fake, start_router, state_section)
    async with RouterClient(router.server.address) as grpc_client:
        for _ in range(RPM + 1):
            async with grpc_client.realtime(timeout=10, metadata=bearer(KEY)) as session:
                await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model=model)))
                with pytest.raises(RouterError) as refused:
                    await anext(session)
            assert refused.value.grpc_code is REFUSED[model]  # not 429
    assert not fake.state.calls()  # none reached an upstream
    await _still_free(router)


@pytest.mark.parametrize("model", sorted(REFUSED))
async def test_refused_realtime_calls_give_their_rpm_place_back(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str], model: str
) -> None:
    router = await _router(fake, start_router, state_section)
    offer = pb.CreateRealtimeCallRequest(model=model, sdp="v=0\r\n")
    for _ in range(RPM + 1):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.stub.CreateRealtimeCall(offer, metadata=bearer(KEY))
        assert refused.value.code() is REFUSED[model]
    assert not fake.state.calls()
    await _still_free(router)
