"""A conversation refused because its only provider (`provider-ban`) already serves its
`max_sessions` conversations is told so, and when to come back: not that no key is available
(the keys are fine), without a hint (memory and Redis); no call made for it, the key's rpm does
not count one."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_routing import AS_SERVICE, ask, with_route_client

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(20)


async def held_on_alpha(router: RouterHandle, fake: FakeUpstream) -> Any:
    """Session s1's stream on `alpha-only`, its first chunk read, held there by the fake."""
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")
    first = ask(model="alpha-only", session="s1")
    stream = router.stub.ChatStream(
        pb.ChatStreamRequest(params=first.params, routing=first.routing)
    )
    async for event in stream:
        if event.HasField("chunk"):
            break
    return stream


async def test_a_conversation_refused_by_max_sessions_is_told_why_and_when(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    config = base_config(fake.base_url, state=state_section)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"  # max_sessions: 1
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    router = await start_router(config)
    stream = await held_on_alpha(router, fake)  # s1 holds alpha's one place

    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await router.stub.Chat(ask(model="alpha-only", session="s2"))
    stream.cancel()
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_sessions" in (busy.value.details() or "")
    assert "No key" not in (busy.value.details() or "")
    assert details_from_rpc_error(busy.value).retry_after_s == pytest.approx(1.0)


async def test_a_conversation_refused_by_max_sessions_spends_none_of_the_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """No call was made for it: the request its lease counted in the key's rpm (and its
    tokens) goes back, or every refused conversation takes a call from those served."""
    config = base_config(fake.base_url, state=state_section)
    alpha = config["providers"]["alpha"]
    alpha["thread_protection"] = "provider-ban"  # max_sessions: 1
    alpha["keys"] = [{"key": "sk-alpha-1", "rpm": 2}]
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    router = await start_router(config)
    stream = await held_on_alpha(
        router, fake
    )  # s1 holds alpha's one place, and one of its key's two calls a minute

    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as busy:
            await router.stub.Chat(ask(model="alpha-only", session="s2"))
        assert "max_sessions" in (busy.value.details() or "")
    stream.cancel()
    fake.state.set_scenario(Scenario(), model="model-a")
    await router.leases_held()

    answer = await router.stub.Chat(ask(model="alpha-only", session="s1"))  # the second call
    assert answer.route.deployment == "alpha/model-a"


async def test_a_pick_refused_by_max_sessions_spends_none_of_the_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    config = with_route_client(base_config(fake.base_url, state=state_section))
    alpha = config["providers"]["alpha"]
    alpha["thread_protection"] = "provider-ban"  # max_sessions: 1
    alpha["keys"] = [{"key": "sk-alpha-1", "rpm": 2}]
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    router = await start_router(config)

    def pick(session: str) -> pb.PickRouteRequest:
        return pb.PickRouteRequest(
            model="alpha-only", routing=routing_pb2.RoutingOptions(session_id=session)
        )

    held = await router.stub.PickRoute(pick("s1"), metadata=AS_SERVICE)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as busy:
            await router.stub.PickRoute(pick("s2"), metadata=AS_SERVICE)
        assert "max_sessions" in (busy.value.details() or "")
    ok = pb.ReportOutcomeRequest(lease_id=held.lease_id, outcome=routing_pb2.OUTCOME_OK)
    assert (await router.stub.ReportOutcome(ok, metadata=AS_SERVICE)).accepted

    again = await router.stub.PickRoute(pick("s1"), metadata=AS_SERVICE)  # the second call
    assert again.deployment == "alpha/model-a"
