"""A background job stopped before its task first ran (the server stopping right after a start
that was still in flight) still gives its slot back, leaves the running jobs and is written
failed: its cleanup is not skipped because its task never began."""

from __future__ import annotations

from router_service.fake_upstream import FakeUpstream
from router_service.responses import STOPPED_MESSAGE
from router_service.sessions import client_scoped
from tests.conftest import StartRouter
from tests.router_service.responses.test_background_rpcs import (
    A,
    loaded,
    start,
    start_request,
)


async def test_a_job_stopped_before_its_task_ran_is_cleaned_up(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    runtime, jobs = router.runtime, router.server.jobs
    await jobs.start(runtime, "a", start_request("resp_e1"))
    await jobs.shutdown(0)  # no await between: the job's task has not run yet
    assert jobs.running == 0
    assert await runtime.store.members("bg-jobs:" + client_scoped("a", "")) == {}
    stopped = await loaded(router, A, "resp_e1")
    assert stopped.background_status == "failed"
    assert STOPPED_MESSAGE in stopped.response_json
