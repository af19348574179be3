"""A WebRTC call (CreateRealtimeCall) whose key release fails once the upstream placed it: the
caller gets its call (placed, paid for), and the failed release is logged once (the lease
expires by its TTL), as after any finished call."""

from __future__ import annotations

import logging

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingReleases, logged_once

OFFER = pb.CreateRealtimeCallRequest(model="voice", sdp="v=0\r\n")


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_placed_call_whose_release_fails_is_answered(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    config = base_config(fake.base_url)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    config["models"]["voice"] = {"deployments": [realtime]}
    router = await start_router(config, store=FailingReleases(error))

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        made = await router.stub.CreateRealtimeCall(OFFER, timeout=5)

    assert made.call_id
    logged_once(caplog)
