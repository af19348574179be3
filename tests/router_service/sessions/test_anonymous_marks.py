"""A call without a session (an embedding without `user`) takes a place of its provider's
`max_sessions` under a key of its own: that place is given back on every way out — the upstream
failing, the caller leaving mid-call — in memory and on Redis, never left to fill the provider."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(20)
EMBED = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", text="hi"))


@pytest.fixture
async def router(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> RouterHandle:
    config = base_config(fake.base_url, state=state_section)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"  # max_sessions: 1
    config["models"]["embedder"] = {"deployments": [{"provider": "alpha", "model": "embed-a"}]}
    return await start_router(config)


async def _no_place_taken(router: RouterHandle) -> None:
    async def free() -> bool:
        active = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
        return all(not s.active for s in active.sessions)

    await eventually(free, what="the call's place given back")
    # A deadline shorter than a failed call's 15 s cooldown: sent at once, not after it.
    assert (await router.stub.Embed(EMBED, timeout=10)).route.provider == "alpha"  # one is free


async def test_a_failed_call_without_a_session_gives_its_place_back(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=503), model="embed-a")
    for _ in range(2):  # were the first's place kept, the second would be refused as busy
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            # A deadline shorter than the first's cooldown: the second is sent into it at once.
            await router.stub.Embed(EMBED, timeout=10)
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    fake.state.clear_scenarios()
    await _no_place_taken(router)


async def test_a_call_without_a_session_left_mid_call_gives_its_place_back(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.hold()
    call = router.stub.Embed(EMBED)
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the embedding upstream")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    fake.state.release()
    await _no_place_taken(router)
