"""PickRoute leases whose release fails (the state store lost): a report that was applied is
accepted all the same, and a sweep gives back every expired lease, not only those before the
first failure; each failed release is logged once (the slot expires by its TTL)."""

from __future__ import annotations

import logging

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.release_failures import FAILED, FINISHED, RELEASE_ERRORS, RELEASE_IDS, FailingReleases
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client


def _told(caplog: pytest.LogCaptureFixture, what: str) -> int:
    assert "sk-alpha" not in caplog.text
    return len([r for r in caplog.records if what in r.getMessage()])


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_report_whose_release_fails_is_accepted(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    config = with_route_client(base_config(fake.base_url))
    router = await start_router(config, store=FailingReleases(error))
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        report = await router.stub.ReportOutcome(
            pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK),
            metadata=AS_SERVICE,
        )

    assert report.accepted
    assert _told(caplog, FINISHED) == 1


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_sweep_gives_back_every_expired_lease_when_releases_fail(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    clock = ManualClock()
    config = with_route_client(base_config(fake.base_url))
    config["server"]["route_lease_ttl_s"] = 30
    store = FailingReleases(error)
    router = await start_router(config, clock=clock, store=store)
    for _ in range(2):
        await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    clock.advance(31.0)

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        assert await router.runtime.route_leases.sweep() == 2

    assert _told(caplog, FAILED) == 2
