"""A reload that changes `routing.bucket_s` (or replicas that disagree on it during a rollout)
reads the statistics written at the old width at their true age: a bucket is named by when it
began, not by its number at one width."""

from __future__ import annotations

import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.server.processes import params

pytestmark = pytest.mark.timeout(20)
FLOOR = 0.1
HALF_WINDOW_S = 3.5 * 86400.0  # of the default seven days: a result then weighs a half


async def _alpha(router: RouterHandle) -> admin_pb.DeploymentStatus:
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    found: admin_pb.DeploymentStatus = next(
        d for d in stats.deployments if d.deployment == "alpha/model-a"
    )
    return found


@pytest.mark.parametrize(("before", "after"), [(60.0, 600.0), (600.0, 60.0)])
async def test_a_new_bucket_width_weighs_old_results_by_their_age(
    fake: FakeUpstream, start_router: StartRouter, before: float, after: float
) -> None:
    clock = ManualClock()
    routing = {"bucket_s": before, "stats_flush_s": 0}
    router = await start_router(base_config(fake.base_url, routing=routing), clock=clock)
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    await router.stub.Chat(pb.ChatRequest(params=params("chain")))  # alpha fails, beta answers
    clock.advance(HALF_WINDOW_S)

    routing["bucket_s"] = after
    await router.server.reload(
        SwitchboardConfig.model_validate(base_config(fake.base_url, routing=routing))
    )

    alpha = await _alpha(router)
    assert alpha.failures == 1
    assert alpha.beta == pytest.approx(FLOOR + 0.5, abs=0.01)
