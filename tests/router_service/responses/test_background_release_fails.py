"""A background response whose call fails while its key release fails too ends `failed` with the
call's own error (the upstream's 400 is `invalid_prompt`), not the store's: streamed or not."""

from __future__ import annotations

import logging

import orjson
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.release_failures import FAILED, RELEASE_ERRORS, RELEASE_IDS, FailingReleases, logged_once
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import A, loaded, start_request

BAD = {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}


@pytest.fixture(params=RELEASE_ERRORS, ids=RELEASE_IDS)
async def router(
    request: pytest.FixtureRequest, fake: FakeUpstream, start_router: StartRouter
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("a", A))
    store = FailingReleases(request.param)
    return await start_router(config, clock=ManualClock(), store=store)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_failed_release_leaves_a_background_response_its_calls_error(
    router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(status=400, error_body={"error": BAD}))
    request = start_request("resp_rf1")
    request.stream = stream
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        await router.stub.StartBackgroundResponse(request, metadata=bearer(A))
        assert await router.server.jobs.settle(5) == 0

    done = await loaded(router, A, "resp_rf1")
    assert done.background_status == "failed"
    error = orjson.loads(done.response_json)["error"]
    assert error["code"] == "invalid_prompt", error
    assert "temperature" in error["message"]
    logged_once(caplog, FAILED)
