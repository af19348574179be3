"""A cancel that stops a running background job while the store fails the job's own writing of
its end (`_finish`, its cancelled mark read back): the job's task ends cancelled, as it was
asked, the store's failure logged once; before, that failure replaced the cancellation inside
the job's task (its end then told as an error of its own, never as the cancel)."""

from __future__ import annotations

import logging

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.responses import CANCELLED
from router_service.state import MemoryStateStore, PutResult
from tests.conftest import StartRouter
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import start_request

pytestmark = pytest.mark.timeout(20)
KEY = "sk-client-b"


class FailsTheSecondCancel(MemoryStateStore):
    """Memory state whose writes of a cancelled end mark after the first (the canceller's:
    the job's own, as it writes its end) raise `error`."""

    def __init__(self, clock: ManualClock, error: Exception) -> None:
        super().__init__(clock)
        self.error = error
        self.cancels = 0

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if data == CANCELLED:
            self.cancels += 1
            if self.cancels > 1:
                raise self.error
        return await super().put_document(name, data, ttl_s, only_new=only_new)


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_cancelled_job_whose_end_fails_to_be_written_ends_cancelled(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    clock = ManualClock()
    store = FailsTheSecondCancel(clock, error)
    config = guarded_config(fake.base_url, client("b", KEY))
    router = await start_router(config, clock=clock, store=store)
    fake.state.hold()
    await router.stub.StartBackgroundResponse(start_request("resp_c1"), metadata=bearer(KEY))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the job's call upstream")
    (task,) = [job.task for job in router.server.jobs._jobs.values()]
    assert task is not None

    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        cancel = pb.CancelResponseRequest(id="resp_c1")
        answer = await router.stub.CancelResponse(cancel, metadata=bearer(KEY))
        assert await router.server.jobs.settle(5) == 0
    fake.state.release()

    assert orjson.loads(answer.response_json)["status"] == "cancelled"
    assert task.cancelled(), task.exception()
    told = [r for r in caplog.records if "its stop not written" in r.message]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
    assert KEY not in caplog.text
