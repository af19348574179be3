"""A background job whose place among its client's running jobs cannot be given back as it ends
(the state store lost): its answer stays written `completed`, the failure is logged once (the
place expires after the job's time limit), and the job's task ends without an error nobody
would retrieve."""

from __future__ import annotations

import asyncio
import logging

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import A, loaded, start_request


class FailingJobLeaves(MemoryStateStore):
    """Memory state whose leaves of background jobs' places raise `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def leave(self, group: str, member: str, token: str) -> None:
        if group.startswith("bg-jobs:"):
            raise self.error
        await super().leave(group, member, token)


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_job_whose_place_is_not_given_back_ends_completed(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    config = guarded_config(fake.base_url, client("a", A))
    router = await start_router(config, clock=ManualClock(), store=FailingJobLeaves(error))
    fake.state.hold()  # the job may not end (and leave the table) before the test takes its task
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        await router.stub.StartBackgroundResponse(start_request("resp_lv1"), metadata=bearer(A))
        (task,) = [job.task for job in router.server.jobs._jobs.values()]
        assert task is not None
        fake.state.release()
        await asyncio.wait([task])

    assert task.exception() is None
    assert (await loaded(router, A, "resp_lv1")).background_status == "completed"
    told = [r for r in caplog.records if "its place among the client's jobs" in r.getMessage()]
    assert len(told) == 1 and A not in caplog.text
