"""The latency a realtime deployment is measured with (the `latency` strategy's EWMA): how long
its session took to open, not how long the caller kept it (a conversation of ten minutes says
nothing of the deployment's speed)."""

from __future__ import annotations

import pytest

from clients import RouterClient
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.router_service.server.test_realtime_rpc import (
    ask_then_close,
    open_session,
    realtime_config,
)

pytestmark = pytest.mark.timeout(30)


async def test_a_long_session_is_measured_by_its_opening(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(realtime_config(fake), clock=clock)
    stats = router.runtime.stats
    async with RouterClient(router.server.address) as grpc_client:
        session, route = await open_session(grpc_client)
        assert route.deployment == "alpha/rt-a"
        assert "session.created" in (await anext(session)).event_json
        clock.advance(600.0)  # the caller talks for ten minutes
        await ask_then_close(session)

    async def measured() -> bool:
        return stats.latency("alpha/rt-a") is not None

    await eventually(measured, what="the session's success in the statistics")
    assert stats.latency("alpha/rt-a") == 0.0  # the clock stood still while it opened
