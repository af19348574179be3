"""A deployment the session (thread protection) came to skip after this request's plan was
made is held back on the walk while another candidate remains, tried only as the last resort
(as the planner tries a skipped one when the skips left nothing); what is held back mid-walk is
named with its real reason, not always `cooldown`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    ask,
    two_providers,
    with_route_client,
)
from tests.router_service.server.test_window_fallbacks import TOO_LONG

pytestmark = pytest.mark.timeout(30)

Call = Callable[[RouterHandle], Awaitable[list[str]]]


async def _unary(router: RouterHandle) -> list[str]:
    answer = await router.stub.Chat(ask(session="s1"), metadata=AS_SERVICE)
    return [a.deployment for a in answer.route.attempts]


async def _stream(router: RouterHandle) -> list[str]:
    chat = ask(session="s1")
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    attempts: list[str] = []
    async for message in router.stub.ChatStream(request, metadata=AS_SERVICE):
        if message.HasField("route"):
            attempts = [a.deployment for a in message.route.attempts]
    return attempts


def _three(fake_url: str) -> dict[str, Any]:
    """beta, then alpha, then gamma; a skip lasts 30 s (`thread_cooldown_s`)."""
    config = with_route_client(two_providers(fake_url, sessions={"thread_cooldown_s": 30}))
    config["providers"]["gamma"] = {"base_url": fake_url, "keys": ["kc1"]}
    config["models"]["chat"]["deployments"] = [
        {"provider": "beta", "model": "model-b"},
        {"provider": "alpha", "model": "model-a"},
        {"provider": "gamma", "model": "model-c"},
    ]
    return config


async def _report(router: RouterHandle, outcome: routing_pb2.Outcome.ValueType) -> None:
    """Another call of the conversation `s1` failed on alpha: TRUNCATED skips it for the
    session only (no global cooldown), UPSTREAM_ERROR cools it for everyone (15 s) too."""
    request = pb.PickRouteRequest(model="alpha/model-a", routing=ask(session="s1").routing)
    picked = await router.stub.PickRoute(request, metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=outcome)
    assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted


async def _while_beta_is_asked(
    fake: FakeUpstream, router: RouterHandle, call: Call, outcome: routing_pb2.Outcome.ValueType
) -> asyncio.Future[list[str]]:
    """The call planned (alpha allowed), beta asked; alpha then excluded by `outcome`."""
    fake.state.hold()
    running = asyncio.ensure_future(call(router))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="beta asked")
    await _report(router, outcome)
    fake.state.release()
    return running


@pytest.mark.parametrize("call", [_unary, _stream], ids=["unary", "stream"])
async def test_one_skipped_since_the_plan_is_held_back_while_another_remains(
    fake: FakeUpstream, start_router: StartRouter, call: Call
) -> None:
    """beta fails; alpha, skipped for the conversation since the plan, is not sent to: gamma
    answers. It was sent alpha (the walk read only global cooldowns)."""
    router = await start_router(_three(fake.base_url), clock=ManualClock())
    fake.state.set_scenario(Scenario.server_error(503), model="model-b")
    running = await _while_beta_is_asked(fake, router, call, routing_pb2.OUTCOME_TRUNCATED)

    assert await running == ["beta/model-b", "gamma/model-c"]
    assert fake.state.count(model="model-a") == 0


@pytest.mark.parametrize("call", [_unary, _stream], ids=["unary", "stream"])
async def test_one_skipped_since_the_plan_is_the_last_resort(
    fake: FakeUpstream, start_router: StartRouter, call: Call
) -> None:
    """beta and gamma fail: alpha, skipped, is tried last rather than the call refused (as
    the planner does when the skips leave nothing)."""
    router = await start_router(_three(fake.base_url), clock=ManualClock())
    fake.state.set_scenario(Scenario.server_error(503), model="model-b")
    fake.state.set_scenario(Scenario.server_error(503), model="model-c")
    running = await _while_beta_is_asked(fake, router, call, routing_pb2.OUTCOME_TRUNCATED)

    assert await running == ["beta/model-b", "gamma/model-c", "alpha/model-a"]


async def test_one_held_back_mid_walk_is_named_with_its_reason(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """beta is too small for the request; alpha, larger, failed the conversation since the
    plan (skipped 30 s) and cools for everyone (15 s): held back, and the refusal names both
    reasons, as the plan's would. It said `(cooldown)` whatever the reason."""
    config = with_route_client(two_providers(fake.base_url, sessions={"thread_cooldown_s": 30}))
    config["models"]["chat"]["deployments"] = [
        {"provider": "beta", "model": "model-b", "context_window": 8000},
        {"provider": "alpha", "model": "model-a", "context_window": 128000},
    ]
    router = await start_router(config, clock=ManualClock())
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="model-b")
    running = await _while_beta_is_asked(fake, router, _unary, routing_pb2.OUTCOME_UPSTREAM_ERROR)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = caught.value.details() or ""
    assert "alpha/model-a (session_skip; cooling for another 15 s)" in details
    assert fake.state.count(model="model-a") == 0
