"""A background response answered while settling its tokens fails (the state store lost): the
paid-for answer stays `completed`, as a foreground call's stays answered, and the failed
settlement is logged (the estimate stays counted); not a `failed` job with the store's error."""

from __future__ import annotations

import logging

import orjson
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingGiveBacks
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import A, loaded, start_request
from tests.router_service.server.test_settle_fails import SETTLING


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_background_answer_whose_settlement_fails_stays_completed(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    stream: bool,
) -> None:
    config = guarded_config(fake.base_url, client("a", A, tpm=100_000))
    router = await start_router(config, clock=ManualClock(), store=FailingGiveBacks(error))
    request = start_request("resp_sf1")
    request.stream = stream
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        await router.stub.StartBackgroundResponse(request, metadata=bearer(A))
        assert await router.server.jobs.settle(5) == 0

    done = await loaded(router, A, "resp_sf1")
    response = orjson.loads(done.response_json)
    assert done.background_status == "completed", response
    assert response["output"], response
    told = [r for r in caplog.records if SETTLING in r.getMessage()]
    assert len(told) == 1 and A not in caplog.text
