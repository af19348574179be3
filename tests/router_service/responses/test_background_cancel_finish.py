"""A cancel that lands while a background job writes its end (its answer, or its failure): the
job ends cancelled, as CancelResponse answers and the store keeps it — in the job's metric too."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.responses import CANCELLED, DONE
from router_service.state import MemoryStateStore, PutResult
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import loaded, start_request

pytestmark = pytest.mark.timeout(20)
KEY = "sk-client-b"


class HeldEnds(MemoryStateStore):
    """A store whose job end mark `done` (the runner's, as its `_finish` begins) waits until
    released: a Redis slow to answer while the caller cancels."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.finishing = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.released = asyncio.Event()

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if data == DONE:
            self.finishing.set()
            await self.released.wait()
        result = await super().put_document(name, data, ttl_s, only_new=only_new)
        if data == CANCELLED:
            self.cancelled.set()
        return result


@pytest.mark.parametrize("upstream", ["answers", "fails"])
async def test_a_cancel_during_the_jobs_end_ends_it_cancelled(
    upstream: str, fake: FakeUpstream, start_router: StartRouter
) -> None:
    if upstream == "fails":
        fake.state.set_scenario(Scenario.server_error(status=503))
    clock = ManualClock()
    store = HeldEnds(clock)
    with TelemetryCapture(tracing=False) as captured:
        config = guarded_config(fake.base_url, client("b", KEY))
        router = await start_router(config, clock=clock, store=store)
        await router.stub.StartBackgroundResponse(start_request("resp_e1"), metadata=bearer(KEY))
        await asyncio.wait_for(store.finishing.wait(), 10)  # the call over, its end held
        cancel = pb.CancelResponseRequest(id="resp_e1")
        cancelling = asyncio.ensure_future(router.stub.CancelResponse(cancel, metadata=bearer(KEY)))
        await asyncio.wait_for(store.cancelled.wait(), 10)  # the cancel's mark came first
        store.released.set()
        answer = await cancelling
        assert await router.server.jobs.settle(5) == 0
        ended = [
            (labels, point.value)
            for labels, point in captured.points("switchboard.responses.background.ended")
        ]
    assert orjson.loads(answer.response_json)["status"] == "cancelled"
    assert (await loaded(router, KEY, "resp_e1")).background_status == "cancelled"
    assert ended == [({"status": "cancelled"}, 1)]  # what operators see of it
