"""A deployment held back on the walk as the last resort (the session came to skip it after
the plan) is looked at again before it is asked: one that came to cool for everyone (or whose
provider the conversation came to ban) while the others were asked is not asked at all, as
the walk holds it back when it reaches it. It was asked as read when the walk passed it."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.engine.test_skipped_on_the_walk import Call, _stream, _three, _unary
from tests.router_service.server.test_routing import AS_SERVICE, ask

pytestmark = pytest.mark.timeout(30)


async def _failed_on_alpha(router: RouterHandle, outcome: routing_pb2.Outcome.ValueType) -> None:
    """Another call of the conversation `s1` failed on alpha with `outcome`."""
    request = pb.PickRouteRequest(model="alpha/model-a", routing=ask(session="s1").routing)
    picked = await router.stub.PickRoute(request, metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=outcome)
    assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted


@pytest.mark.parametrize("call", [_unary, _stream], ids=["unary", "stream"])
async def test_a_last_resort_that_came_to_cool_is_not_asked(
    fake: FakeUpstream, start_router: StartRouter, call: Call
) -> None:
    """beta fails; alpha, skipped for `s1` since the plan, is held back as the last resort;
    while gamma (on its own upstream) is asked, alpha comes to cool for everyone; gamma fails:
    the call fails as theirs did, and alpha is not sent to."""
    async with FakeUpstream() as other:
        config = _three(fake.base_url)
        config["providers"]["gamma"]["base_url"] = other.base_url
        router = await start_router(config, clock=ManualClock())
        fake.state.set_scenario(Scenario.server_error(503), model="model-b")
        other.state.set_scenario(Scenario.server_error(503), model="model-c")
        fake.state.hold()
        other.state.hold()
        running = asyncio.ensure_future(call(router))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="beta asked")
        await _failed_on_alpha(router, routing_pb2.OUTCOME_TRUNCATED)  # skipped for s1
        fake.state.release()
        await other.state.wait_for(lambda: other.state.held == 1, what="gamma asked")
        await _failed_on_alpha(router, routing_pb2.OUTCOME_UPSTREAM_ERROR)  # cools now
        asked_alpha = fake.state.count(model="model-a")
        other.state.release()

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running

    # As when it cooled before the walk reached it: the others' failure (503) is the answer.
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert fake.state.count(model="model-a") == asked_alpha
