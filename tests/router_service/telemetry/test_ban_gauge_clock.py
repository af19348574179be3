"""`switchboard.session.bans.active` counts the bans younger than `sessions.thread_cooldown_s`
on the router's clock, the one the bans themselves expire by: once that clock has moved past
the window, the gauge reads 0 as the store forgets them, not an hour later by another clock."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.router_service.server.test_routing import ask, two_providers
from tests.router_service.telemetry.test_metrics import samples, value

ACTIVE = "switchboard_session_bans_active"


def banned(captured: TelemetryCapture, provider: str) -> float:
    return value(samples(captured.prometheus_text()), ACTIVE, switchboard_provider=provider)


async def test_a_ban_leaves_the_gauge_when_the_routers_clock_passes_its_window(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    clock = ManualClock()
    config = two_providers(fake.base_url)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    moved = await router.stub.Chat(ask(session="s1"))
    assert moved.route.deployment == "beta/model-b"  # alpha banned for this conversation
    await router.runtime.gauges.poll()
    assert banned(captured, "alpha") == 1

    window = router.runtime.config.sessions.thread_cooldown_s
    clock.advance(window - 1)
    await router.runtime.gauges.poll()
    assert banned(captured, "alpha") == 1  # not yet

    clock.advance(2)
    await router.runtime.gauges.poll()
    assert banned(captured, "alpha") == 0
