"""Every way a batch ends, read with the official `openai` SDK's `batches.retrieve` through the
edge: its `request_counts` add up (`completed` + `failed` = `total`: each input line counted
once), each custom_id is in its output or error file once, both files in the input's order
whatever order the lines answered in, and its ending is counted once in
`switchboard.batches.ended` with the status it ended with (a cancel coming as it ends too).
Endings covered elsewhere with the same counts: completed and failed at validation
(test_batches_sdk.py, test_batch_inputs_sdk.py), expired (test_batch_windows_sdk.py), cancelled
while running or waiting, taken over (tests/replicas/test_batch_handover.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest
from openai.types import Batch

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import LineResult
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.responses import CANCELLED
from router_service.state import MemoryStateStore, PutResult
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, counts, jsonl, lines_of
from tests.helpers import eventually, metric_values
from tests.router_service.server.test_batch_failures import FailingPages, made_elsewhere

Stack = tuple[RouterHandle, openai.AsyncOpenAI]
OpenOn = Callable[..., Awaitable[Stack]]
ENDED = "switchboard.batches.ended"


@pytest.fixture
async def open_on(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[OpenOn]:
    """A router (open access) on the given state store and clock, these config sections, an
    edge and an SDK."""
    sdks: list[openai.AsyncOpenAI] = []

    async def open_(store: MemoryStateStore, clock: ManualClock, **sections: Any) -> Stack:
        router = await start_router(
            base_config(fake.base_url, **sections), clock=clock, store=store
        )
        edge = await start_edge(router)
        sdk = openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=0, timeout=10
        )
        sdks.append(sdk)
        return router, sdk

    yield open_
    for sdk in sdks:
        await sdk.close()


async def created(sdk: openai.AsyncOpenAI, *lines: dict[str, Any]) -> Batch:
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(*lines)), purpose="batch")
    return await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


async def files_of(sdk: openai.AsyncOpenAI, batch: Batch) -> tuple[list[str], list[str]]:
    """The custom_ids of the batch's output file and of its error file (each with its code,
    or HTTP status), in their order."""
    outputs = await lines_of(sdk, batch.output_file_id) if batch.output_file_id else []
    errors = await lines_of(sdk, batch.error_file_id) if batch.error_file_id else []
    return [o["custom_id"] for o in outputs], [
        f"{e['custom_id']}:{e['error']['code'] if e['error'] else e['response']['status_code']}"
        for e in errors
    ]


async def test_a_batch_failing_mid_run_counts_every_line_and_lists_those_not_run(
    fake: FakeUpstream, open_on: OpenOn
) -> None:
    clock = ManualClock(time.time())
    store = FailingPages(clock, fail_from=3)  # the first answer kept (two writes), then a bug
    router, sdk = await open_on(store, clock, batches={"concurrency": 1})
    batch = await created(sdk, chat_line("one"), chat_line("two"), chat_line("three"))
    assert await router.server.batch_jobs.settle(10) == 0
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "failed" and counts(done) == (3, 1, 2)
    assert await files_of(sdk, done) == (["one"], ["two:batch_failed", "three:batch_failed"])
    (not_run, _) = await lines_of(sdk, done.error_file_id or "")
    assert not_run["response"] is None
    assert not_run["error"]["message"].startswith("The batch failed before this request executed")


async def test_the_error_file_is_in_the_inputs_order_whatever_order_lines_answered_in(
    fake: FakeUpstream, open_on: OpenOn
) -> None:
    """Three lines at once: the first held upstream, the second failing at once, the third
    answered; cancelled then, the first is listed `batch_cancelled` before the second's 404."""
    clock = ManualClock(time.time())
    router, sdk = await open_on(MemoryStateStore(clock), clock, batches={"concurrency": 3})
    fake.state.set_scenario(Scenario(stall_before_first_byte=True), text="one")
    fake.state.set_scenario(Scenario(status=404), text="two")
    lines = chat_line("one", text="one"), chat_line("two", text="two"), chat_line("three")
    batch = await created(sdk, *lines)

    async def two_answered() -> bool:
        answered = await router.runtime.batches.answers.answered("", batch.id)
        return len(answered.results) == 2

    await eventually(two_answered, what="lines two and three answered")
    cancelled = await sdk.batches.cancel(batch.id)
    assert cancelled.status == "cancelled" and counts(cancelled) == (3, 1, 2)
    assert await files_of(sdk, cancelled) == (["three"], ["one:batch_cancelled", "two:404"])


class HoldsAWrite(MemoryStateStore):
    """Memory state that holds the first document write `holds` picks until `let_go` is set:
    a cancel comes meanwhile."""

    completes_without_waiting = False  # that write awaits

    def __init__(self, clock: ManualClock, holds: Callable[[str, bytes], bool]) -> None:
        super().__init__(clock)
        self._holds = holds
        self.reached, self.let_go = asyncio.Event(), asyncio.Event()

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if not self.reached.is_set() and self._holds(name, data):
            self.reached.set()
            await self.let_go.wait()
        return await super().put_document(name, data, ttl_s, only_new=only_new)


def _end_mark(name: str, data: bytes) -> bool:
    """A batch's end mark: its runner's, as it begins to end it."""
    return name.startswith("batch-end:")


def _finalizing(name: str, data: bytes) -> bool:
    """A batch written `finalizing`: its runner's end mark written already."""
    return name.startswith("batch:") and bpb.Batch.FromString(data).status == "finalizing"


async def held_as_it_ends(
    open_on: OpenOn, holds: Callable[[str, bytes], bool]
) -> tuple[RouterHandle, openai.AsyncOpenAI, HoldsAWrite, Batch]:
    """A batch of two lines, both answered, its runner's end held at the write `holds` picks."""
    clock = ManualClock(time.time())
    store = HoldsAWrite(clock, holds)
    router, sdk = await open_on(store, clock)
    batch = await created(sdk, chat_line("one"), chat_line("two"))
    await store.reached.wait()
    return router, sdk, store, batch


async def test_a_cancel_coming_as_the_batch_ends_ends_it_cancelled_counted_once(
    fake: FakeUpstream, open_on: OpenOn
) -> None:
    with TelemetryCapture(tracing=False) as captured:
        router, sdk, store, batch = await held_as_it_ends(open_on, _end_mark)
        cancelling = asyncio.ensure_future(sdk.batches.cancel(batch.id))

        async def cancel_marked() -> bool:
            return await router.runtime.batches.marks.marks([("", batch.id)]) == [CANCELLED]

        await eventually(cancel_marked, what="the cancel's end mark written first")
        store.let_go.set()
        cancelled = await cancelling
        assert await router.server.batch_jobs.settle(10) == 0
        ended = metric_values(captured, ENDED)
    assert cancelled.status == "cancelled" and counts(cancelled) == (2, 2, 0)
    assert ended == {(("status", "cancelled"),): 1}
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "cancelled" and counts(done) == (2, 2, 0)
    assert await files_of(sdk, done) == (["one", "two"], [])


async def test_a_cancel_coming_once_the_batch_began_to_end_is_refused_and_it_ends_as_it_would(
    fake: FakeUpstream, open_on: OpenOn
) -> None:
    with TelemetryCapture(tracing=False) as captured:
        router, sdk, store, batch = await held_as_it_ends(open_on, _finalizing)
        with pytest.raises(openai.ConflictError, match="with status 'finalizing'"):
            await sdk.batches.cancel(batch.id)
        store.let_go.set()
        assert await router.server.batch_jobs.settle(10) == 0
        ended = metric_values(captured, ENDED)
    assert ended == {(("status", "completed"),): 1}
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "completed" and counts(done) == (2, 2, 0)


async def test_a_batch_failing_validation_is_counted_ended(
    fake: FakeUpstream, open_on: OpenOn
) -> None:
    clock = ManualClock(time.time())
    with TelemetryCapture(tracing=False) as captured:
        _, sdk = await open_on(MemoryStateStore(clock), clock)
        batch = await created(sdk, chat_line("same"), chat_line("same"))
        ended = metric_values(captured, ENDED)
    assert batch.status == "failed" and counts(batch) == (0, 0, 0)  # as OpenAI: no requests
    assert ended == {(("status", "failed"),): 1}


async def test_a_batch_taken_over_whose_input_no_longer_validates_fails_counting_every_line(
    fake: FakeUpstream, open_on: OpenOn, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch made and begun by a replica of an older version (a rolling deploy) that let a
    line ask to `stream`: where it is taken over it fails at once, naming the line, what it
    answered written out, its lines not answered counted failed; no traceback, no line run."""
    clock = ManualClock(time.time())
    router, sdk = await open_on(MemoryStateStore(clock), clock)
    streamed = chat_line("two")
    streamed["body"]["stream"] = True
    content = jsonl(chat_line("one"), streamed, chat_line("three"))
    batch = await made_elsewhere(router, content, completed=1)
    records = router.runtime.batches
    answer = {"id": "batch_req_1", "custom_id": "one", "response": {"status_code": 200}}
    writer = records.answers.writer("", batch.id, await records.answers.answered("", batch.id))
    await writer.add(LineResult(1, {**answer, "error": None}, ok=True))  # its first runner's
    assert await router.server.batch_jobs.adopt(router.runtime) == 1
    assert await router.server.batch_jobs.settle(10) == 0
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "failed" and counts(done) == (3, 1, 2)
    assert done.errors is not None
    (error,) = done.errors.data or []
    assert error.code == "invalid_input_file" and "(line 2: " in (error.message or "")
    assert await files_of(sdk, done) == (["one"], [])
    assert fake.state.count(path="/chat/completions") == 0
    assert not [r for r in caplog.records if r.exc_info]  # no traceback said
