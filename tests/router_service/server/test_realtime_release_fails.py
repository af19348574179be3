"""A Realtime session whose key release fails as it closes (the state store lost): the caller's
session ends as it would (its close told, status OK), and the failed release is logged once."""

from __future__ import annotations

import logging

import pytest

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.release_failures import FAILED, RELEASE_ERRORS, RELEASE_IDS, FailingReleases, logged_once
from tests.router_service.server.test_realtime_rpc import realtime_config

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_closed_session_whose_release_fails_ends_ok(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    router = await start_router(realtime_config(fake), store=FailingReleases(error))
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        async with RouterClient(router.server.address) as client:
            async with client.realtime(timeout=10) as session:
                await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
                route = await anext(session)
                assert route.route.deployment == "alpha/rt-a"
                await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
                rest = [message async for message in session]  # an error would raise here

    assert rest[-1].WhichOneof("message") == "close" and rest[-1].close.code == 1000
    logged_once(caplog, FAILED)
