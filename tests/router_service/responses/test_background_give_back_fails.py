"""A background response whose call is refused for the request itself, while giving its start's
estimate back fails (the state store lost): the job still ends `failed` with the call's own
error, and the failed give-back is logged; before, the job's task ended on the store's error
and its response stayed `in_progress` until its heartbeat lapsed."""

from __future__ import annotations

import logging

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingGiveBacks
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_refused_gives_back import KEY, _inexpressible


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_refused_job_whose_give_back_fails_ends_failed_with_its_error(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    stream: bool,
) -> None:
    config = guarded_config(fake.base_url, client("alice", KEY, tpm=100_000))
    router = await start_router(config, clock=ManualClock(), store=FailingGiveBacks(error))
    start = _inexpressible("resp_gb1", stream=stream)
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        await router.stub.StartBackgroundResponse(start, metadata=bearer(KEY))
        assert await router.server.jobs.settle(5) == 0

    load = pb.LoadResponsesRequest(ids=["resp_gb1"])
    loaded = await router.stub.LoadResponses(load, metadata=bearer(KEY))
    failed = orjson.loads(loaded.responses[0].response_json)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "invalid_prompt"
    told = [r for r in caplog.records if "giving a refused call's start back failed" in r.message]
    assert len(told) == 1 and KEY not in caplog.text
