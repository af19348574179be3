"""Every deployment of a group cooling, and a caller with no deadline (a gRPC call without one,
the client's `timeout=None`): the router waits for the soonest cooldown to end, as it does when
a deadline allows (README, Global cooldowns), rather than send the call into a cooldown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import advance_until_done
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    ask,
    two_providers,
    with_route_client,
)

pytestmark = pytest.mark.timeout(30)


async def _chat(router: RouterHandle) -> str:
    response: pb.ChatResponse = await router.stub.Chat(ask(session="s2"), metadata=AS_SERVICE)
    return response.route.deployment


async def _stream(router: RouterHandle) -> str:
    chat = ask(session="s2")
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    stream = router.stub.ChatStream(request, metadata=AS_SERVICE)
    deployments: list[str] = [e.route.deployment async for e in stream if e.HasField("route")]
    return deployments[-1]


async def _pick(router: RouterHandle) -> str:
    request = pb.PickRouteRequest(model="chat", routing=ask(session="s2").routing)
    picked: pb.PickRouteResponse = await router.stub.PickRoute(request, metadata=AS_SERVICE)
    return picked.deployment


@pytest.mark.parametrize("call", [_chat, _stream, _pick], ids=["unary", "stream", "pick"])
async def test_with_no_deadline_the_soonest_cooldown_is_waited_out(
    fake: FakeUpstream, start_router: StartRouter, call: Callable[[RouterHandle], Awaitable[str]]
) -> None:
    """It was tried at once: the call went to a deployment cooling for everyone (a picked
    route handed out into its cooldown), while a caller who gave a deadline waited."""
    clock = ManualClock()
    router = await start_router(with_route_client(two_providers(fake.base_url)), clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=2))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask(session="s1"), metadata=AS_SERVICE)  # both fail, both cool
    started = clock.now()

    answered = asyncio.ensure_future(call(router))
    await advance_until_done(clock, 1.0, answered, what="the call, past the cooldown")

    assert await answered == "alpha/model-a"  # cooled first, ends first
    assert clock.now() - started >= 15.0  # cooldowns.transient_s, waited on the clock
