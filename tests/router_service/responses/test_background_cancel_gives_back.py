"""A background response cancelled before its job asked any upstream (here: while its job writes
it `in_progress`, a Redis slow to answer) used nothing: its start's estimate goes back from the
client's tpm and budgets, and its rpm place too, as a refused call's (`Admission.give_back`).
Before, each such job kept its whole estimate charged (the job settles only an answer's usage),
and a client's few cancelled jobs got its next good calls 429."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import AppendResult, MemoryStateStore, PutResult
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config
from tests.router_service.auth.test_unknown_model_gives_back import LIMITS, RPM, _still_free

pytestmark = pytest.mark.timeout(20)
KEY = "sk-alice-unknown-0123"  # as `_still_free` calls with


class HeldProgress(MemoryStateStore):
    """A store whose `in_progress` writes (a job's first step, before its call) wait until
    cancelled: the job is stopped there."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.holding = asyncio.Event()

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if b'"in_progress"' in data:
            self.holding.set()
            await asyncio.Event().wait()  # until the cancel stops the job
        return await super().put_document(name, data, ttl_s, only_new=only_new)


class HeldInProgressEvent(MemoryStateStore):
    """A store whose append of a streamed job's `response.in_progress` event (written before
    its call) waits until cancelled: the job is stopped there."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.holding = asyncio.Event()

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        if b'"response.in_progress"' in data:
            self.holding.set()
            await asyncio.Event().wait()  # until the cancel stops the job
        return await super().append_document(name, data, max_bytes=max_bytes)


@pytest.mark.parametrize("limits", [LIMITS, {"rpm": RPM}], ids=["tokens", "rpm-only"])
async def test_a_job_cancelled_before_its_call_gives_its_start_back(
    fake: FakeUpstream, start_router: StartRouter, limits: dict[str, int]
) -> None:
    clock = ManualClock()  # one minute, one day all along
    store = HeldProgress(clock)
    config = guarded_config(fake.base_url, client("alice", KEY, **limits))
    router = await start_router(config, clock=clock, store=store)
    for number in range(RPM + 1):
        response_id = f"resp_c{number}"
        queued = {"id": response_id, "object": "response", "created_at": 1, "output": []}
        start = pb.StartBackgroundResponseRequest(
            chat=chat(max_tokens=500), response_json=orjson.dumps(queued).decode()
        )
        store.holding.clear()
        await router.stub.StartBackgroundResponse(start, metadata=bearer(KEY))  # not 429
        await asyncio.wait_for(store.holding.wait(), 10)
        cancel = pb.CancelResponseRequest(id=response_id)
        cancelled = await router.stub.CancelResponse(cancel, metadata=bearer(KEY))
        assert orjson.loads(cancelled.response_json)["status"] == "cancelled"
    assert await router.server.jobs.settle(5) == 0
    assert not fake.state.calls()  # none reached an upstream
    await _still_free(router)


async def test_a_streamed_job_cancelled_as_it_writes_its_first_event_gives_its_start_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Its `response.in_progress` event is written before its call: cancelled there, it asked
    no upstream either. Before, only the Response's write counted as before the call."""
    clock = ManualClock()
    store = HeldInProgressEvent(clock)
    config = guarded_config(fake.base_url, client("alice", KEY, **LIMITS))
    router = await start_router(config, clock=clock, store=store)
    for number in range(RPM + 1):
        response_id = f"resp_s{number}"
        queued = {"id": response_id, "object": "response", "created_at": 1, "output": []}
        start = pb.StartBackgroundResponseRequest(
            chat=chat(max_tokens=500), response_json=orjson.dumps(queued).decode(), stream=True
        )
        store.holding.clear()
        await router.stub.StartBackgroundResponse(start, metadata=bearer(KEY))  # not 429
        await asyncio.wait_for(store.holding.wait(), 10)
        cancel = pb.CancelResponseRequest(id=response_id)
        cancelled = await router.stub.CancelResponse(cancel, metadata=bearer(KEY))
        assert orjson.loads(cancelled.response_json)["status"] == "cancelled"
    assert await router.server.jobs.settle(5) == 0
    assert not fake.state.calls()  # none reached an upstream
    await _still_free(router)
