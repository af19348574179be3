"""A chat deployment at OpenAI itself and its Responses API twin (called for hosted tools) keep
their own transient cooldowns and routing statistics: a server error of one API cools and
counts against that API alone. Rate limits stay shared: they are the key × model's, and
OpenAI's are per model across both APIs. In memory and on Redis (replicas see the same)."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import chat

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

WEB_SEARCH = [chat_pb2.Tool(type="web_search")]
AZ = "az/gpt-4o-az"


@pytest.fixture
async def router(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> RouterHandle:
    config = base_config(fake.base_url, state=state_section)
    config["providers"]["az"] = {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]}
    # Its chat API first, a compatible server after it (no hosted tools: left out of those).
    chain = [{"provider": "az", "model": "gpt-4o-az"}, {"provider": "beta", "model": "model-b"}]
    config["models"]["twin"] = {"deployments": chain}
    return await start_router(config)


async def health(router: RouterHandle) -> dict[str, admin_pb.DeploymentStatus]:
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    return {d.deployment: d for d in stats.deployments}


async def test_a_responses_server_error_leaves_the_chat_api_uncooled(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=500), model="gpt-4o-az")
    with pytest.raises(grpc.aio.AioRpcError):  # its twin alone takes hosted tools
        await router.stub.Chat(chat("twin", "weather", tools=WEB_SEARCH))
    assert fake.state.calls(model="gpt-4o-az")[-1].path.endswith("/responses")
    fake.state.clear_scenarios()

    answer = await router.stub.Chat(chat("twin", "hello"))
    assert answer.route.deployment == AZ  # not cooled: its chat API served no error
    shown = await health(router)
    assert shown[f"{AZ}#responses"].cooldown_until_unix > 0
    assert shown[f"{AZ}#responses"].failures == 1
    assert (shown[AZ].cooldown_until_unix, shown[AZ].failures, shown[AZ].successes) == (0, 0, 1)


async def test_a_chat_server_error_leaves_the_responses_api_uncooled(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=503), model="gpt-4o-az")
    answer = await router.stub.Chat(chat("twin", "hello"))
    assert answer.route.deployment == "beta/model-b"  # on past the 503
    fake.state.clear_scenarios()

    await router.stub.Chat(chat("twin", "weather", tools=WEB_SEARCH))
    assert fake.state.calls(model="gpt-4o-az")[-1].path.endswith("/responses")
    answer = await router.stub.Chat(chat("twin", "hello"))
    assert answer.route.deployment == "beta/model-b"  # the chat API is still cooling
    shown = await health(router)
    assert shown[AZ].cooldown_until_unix > 0
    assert shown[f"{AZ}#responses"].cooldown_until_unix == 0


async def test_a_rate_limit_on_one_api_holds_for_both(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited("30"), model="gpt-4o-az")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat("twin", "weather", tools=WEB_SEARCH))
    fake.state.clear_scenarios()
    calls = len(fake.state.calls(model="gpt-4o-az"))

    answer = await router.stub.Chat(chat("twin", "hello"))
    assert answer.route.deployment == "beta/model-b"  # its one key is cooling for the model
    assert len(fake.state.calls(model="gpt-4o-az")) == calls
