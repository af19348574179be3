"""model-skip against global cooldowns: which deployment a conversation whose skips and the
group's cooldowns leave nothing is sent to (DESIGN: thread protection)."""

from __future__ import annotations

import grpc
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.router_service.server.test_routing import ask, two_providers


async def test_a_conversation_takes_its_healthy_skipped_deployment_over_one_cooling(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """s1's call failed on alpha (model-skip: skipped for s1, cooled 15 s for everyone) and beta
    served it; then beta failed another caller and cools. Once alpha's cooldown is over, s1's
    next call goes to alpha at once (it serves everyone now) rather than wait out beta's
    cooldown, or be sent to beta while it cools for everyone."""
    clock = ManualClock()
    router = await start_router(two_providers(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    assert (await router.stub.Chat(ask(session="s1"))).route.deployment == "beta/model-b"
    clock.advance(10.0)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask(model="beta/model-b", session="s2"))
    clock.advance(6.0)  # alpha's cooldown over, beta's 9 s from its end
    started = clock.now()

    response = await router.stub.Chat(ask(session="s1"), timeout=60)

    assert response.route.deployment == "alpha/model-a"
    assert clock.now() == started  # no wait for beta's cooldown
    assert [r.model for r in fake.state.calls()] == ["model-a", "model-b", "model-b", "model-a"]
