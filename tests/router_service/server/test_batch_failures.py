"""What fails inside a batch's run is handled, never left behind: its lines' work raising as
its completion window ends (`within_window`, on a ManualClock) is the runner's error, one
raising as the batch is cancelled is said in the log, and a runner that fails (a bug) ends its
batch `failed` with what it answered, the error in the log: no "Task exception was never
retrieved", no task outliving the batch, no batch left `in_progress` forever."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.server._batch_job import BatchJob, within_window
from router_service.state import AppendResult, MemoryStateStore, PutResult
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.router_service.auth.helpers import client, guarded_config

WINDOW_S = 3600.0


@contextmanager
def unhandled_errors() -> Iterator[list[dict[str, Any]]]:
    """What the loop's exception handler is given meanwhile ("Task exception was never
    retrieved" is one), the tasks collected at the end so that it is said by then."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        yield unhandled
        gc.collect()
    finally:
        loop.set_exception_handler(None)


def window_job(clock: ManualClock) -> BatchJob:
    """What `within_window` reads of a job: its batch's window end, its runtime's clock."""
    batch = bpb.Batch(id="batch_window", expires_at=int(clock.now() + WINDOW_S))
    return cast(
        BatchJob,
        SimpleNamespace(batch=batch, who=SimpleNamespace(runtime=SimpleNamespace(clock=clock))),
    )


async def _raises_when_stopped(started: asyncio.Event) -> None:
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise RuntimeError("a line's bookkeeping failed as it stopped") from None


async def windowed_work(clock: ManualClock) -> asyncio.Future[bool]:
    """`within_window` running work that raises when it is stopped, once the work started."""
    started = asyncio.Event()
    windowed = asyncio.ensure_future(
        within_window(window_job(clock), _raises_when_stopped(started))
    )
    await started.wait()
    return windowed


async def test_work_failing_as_the_window_ends_is_the_callers_error() -> None:
    clock = ManualClock()
    with unhandled_errors() as unhandled:
        windowed = await windowed_work(clock)
        clock.advance(WINDOW_S + 1)
        with pytest.raises(RuntimeError, match="as it stopped"):
            await windowed
    assert unhandled == []


async def test_work_failing_as_the_batch_is_cancelled_is_said_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with unhandled_errors() as unhandled:
        windowed = await windowed_work(ManualClock())
        windowed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await windowed
    assert unhandled == []
    assert "batch batch_window: its lines failed as they stopped" in caplog.text
    assert "as it stopped" in caplog.text  # the error's own message, with its traceback


async def test_work_done_within_the_window_leaves_no_wait_behind() -> None:
    clock = ManualClock()
    assert await within_window(window_job(clock), asyncio.sleep(0))
    assert clock._waiters == []  # the window's wait ended with it


class SlowToStopClock(ManualClock):
    """A ManualClock whose waits, once cancelled, end only when `let_go` is set: the window's
    wait still stopping when the batch's cancel comes."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping, self.let_go = asyncio.Event(), asyncio.Event()

    async def wait(self, seconds: float) -> None:
        try:
            await super().wait(seconds)
        except asyncio.CancelledError:
            self.stopping.set()
            await self.let_go.wait()
            raise


async def _fails(started: asyncio.Event) -> None:
    started.set()
    raise RuntimeError("a line's bookkeeping failed")


async def test_work_that_failed_is_said_in_the_log_when_the_batch_is_cancelled_meanwhile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The work failed, and the batch is cancelled as `within_window` stops the window's wait:
    the work's error is said with its batch, not left unretrieved."""
    clock, started = SlowToStopClock(), asyncio.Event()
    with unhandled_errors() as unhandled:
        windowed = asyncio.ensure_future(within_window(window_job(clock), _fails(started)))
        await clock.stopping.wait()  # the work failed: the window's wait is being stopped
        windowed.cancel()
        clock.let_go.set()
        with pytest.raises(asyncio.CancelledError):
            await windowed
    assert unhandled == []
    assert "batch batch_window: its lines failed as they stopped" in caplog.text
    assert "bookkeeping failed" in caplog.text


class FailingPages(MemoryStateStore):
    """Memory state whose writes of a batch's answer pages raise what no runner expects (a
    bug, not the store's own StoreUnavailableError), from the `fail_from`th on."""

    def __init__(self, clock: ManualClock, fail_from: int) -> None:
        super().__init__(clock)
        self.page_writes = 0
        self._fail_from = fail_from

    def _page_write(self, name: str) -> None:
        if name.startswith("batch-page:"):
            self.page_writes += 1
            if self.page_writes >= self._fail_from:
                raise RuntimeError("an unexpected failure keeping an answer")

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        self._page_write(name)
        return await super().put_document(name, data, ttl_s, only_new=only_new)

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        self._page_write(name)
        return await super().append_document(name, data, max_bytes=max_bytes)


async def test_a_runner_that_fails_ends_its_batch_failed_with_what_it_answered(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = FailingPages(clock, fail_from=3)  # the first line's answer kept (two writes)
    config = base_config(fake.base_url, batches={"concurrency": 1})
    router = await start_router(config, clock=clock, store=store)
    content = jsonl(chat_line("one"), chat_line("two"), chat_line("three"))
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    jobs = router.server.batch_jobs
    with unhandled_errors() as unhandled, caplog.at_level(logging.ERROR):
        made = await router.stub.CreateBatch(create)
        assert await jobs.settle(10) == 0
    assert unhandled == []
    assert f"batch {made.batch.id}: running it failed" in caplog.text
    ended = await router.runtime.batches.get("", made.batch.id)
    assert ended.status == "failed" and [e.code for e in ended.errors] == ["batch_failed"]
    assert ended.request_counts.completed == 1 and ended.output_file_id
    assert await router.runtime.batches.runs.running() == []  # out of the running index


class FailingEnds(FailingPages):
    """As FailingPages, and its writes of a batch's end mark raise what no runner expects
    too: the end of a batch failing mid-run fails before its lines are counted."""

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if name.startswith("batch-end:"):
            raise RuntimeError("an unexpected failure marking the batch's end")
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_a_batch_whose_end_fails_before_counting_still_counts_every_line(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Its lines not run (its runner failed after the first answer) are counted `failed`
    though its end failed too: `completed` + `failed` = `total` however it ends."""
    clock = ManualClock(1_700_000_000.0)
    store = FailingEnds(clock, fail_from=3)  # the first line's answer kept (two writes)
    config = base_config(fake.base_url, batches={"concurrency": 1})
    router = await start_router(config, clock=clock, store=store)
    content = jsonl(chat_line("one"), chat_line("two"), chat_line("three"))
    batch = await made_elsewhere(router, content)
    with caplog.at_level(logging.ERROR):
        assert await router.server.batch_jobs.adopt(router.runtime) == 1
        assert await router.server.batch_jobs.settle(10) == 0
    assert f"batch {batch.id}: ending it failed" in caplog.text
    ended = await router.runtime.batches.get("", batch.id)
    assert ended.status == "failed" and [e.code for e in ended.errors] == ["batch_failed"]
    counts = ended.request_counts
    assert (counts.total, counts.completed, counts.failed) == (3, 1, 2)


async def made_elsewhere(
    router: RouterHandle, content: bytes, completed: int = 0, client: str = ""
) -> bpb.Batch:
    """A batch of `client`'s (open access's) of `content`'s lines, `in_progress` as a replica
    of another version made it (its checks, not these) and left it, `completed` lines
    answered."""
    kept = await router.runtime.files.keep(client, "in.jsonl", "batch", content)
    now = int(router.runtime.clock.now())
    total = len(content.splitlines())
    batch = bpb.Batch(
        id="batch_made_elsewhere",
        endpoint="/v1/chat/completions",
        input_file_id=kept.id,
        status="in_progress",
        created_at=now,
        in_progress_at=now,
        expires_at=now + 86400,
        request_counts=bpb.BatchRequestCounts(total=total, completed=completed),
    )
    await router.runtime.batches.begin(client, batch)
    return batch


async def test_a_batch_whose_input_no_longer_validates_where_it_runs_fails_naming_the_line(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A batch made by a replica of another version (a rolling deploy: its checks were not
    these) and taken over here: it fails naming what is wrong, not `completed` with its lines
    in neither file."""
    router = await start_router(base_config(fake.base_url))
    streamed = chat_line("two")
    streamed["body"]["stream"] = True  # taken by the replica that made the batch
    batch = await made_elsewhere(router, jsonl(chat_line("one"), streamed))
    jobs = router.server.batch_jobs
    assert await jobs.adopt(router.runtime) == 1
    assert await jobs.settle(10) == 0
    ended = await router.runtime.batches.get("", batch.id)
    assert ended.status == "failed"
    assert [(e.code, e.message) for e in ended.errors] == [
        (
            "invalid_input_file",
            "The batch's input file no longer validates (line 2: A batch line is answered "
            "whole, into the output file: `stream` must be false.)",
        )
    ]
    assert fake.state.count(path="/chat/completions") == 0


async def test_a_batch_taken_over_whose_client_is_gone_lists_its_lines_not_run(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Its client no longer configured where it is taken over: it fails `client_not_found`,
    no line run, each of its lines in the error file with that code (its input file reads:
    as a batch whose client a reload removed as it ran lists them)."""
    router = await start_router(guarded_config(fake.base_url, client("c", "sk-c")))
    content = jsonl(chat_line("one"), chat_line("two"))
    batch = await made_elsewhere(router, content, client="gone")
    assert await router.server.batch_jobs.adopt(router.runtime) == 1
    assert await router.server.batch_jobs.settle(10) == 0
    done = await router.runtime.batches.get("gone", batch.id)
    assert done.status == "failed" and [e.code for e in done.errors] == ["client_not_found"]
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (2, 0, 2)
    assert done.error_file_id, "its lines not run are listed"
    found = await router.runtime.files.content("gone", done.error_file_id)
    listed = [orjson.loads(line) for line in found.content.splitlines()]
    assert [(e["custom_id"], e["error"]["code"], e["response"]) for e in listed] == [
        ("one", "client_not_found", None),
        ("two", "client_not_found", None),
    ]
    assert fake.state.count(path="/chat/completions") == 0


class FailingOutputs(MemoryStateStore):
    """Memory state whose writes of a file's content raise what no runner expects (a bug), once
    `failing`: the batch's output file, as its run ends."""

    failing = False

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if self.failing and name.startswith("file-data:"):
            raise RuntimeError("an unexpected failure keeping the output")
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_a_batch_whose_end_fails_ends_failed_not_finalizing_for_good(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = FailingOutputs(clock)
    router = await start_router(base_config(fake.base_url), clock=clock, store=store)
    content = jsonl(chat_line("one"), chat_line("two"))
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload)
    store.failing = True
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    jobs = router.server.batch_jobs
    fake.state.hold()  # the job may not end before the test holds it (on a loaded machine)
    with unhandled_errors() as unhandled, caplog.at_level(logging.ERROR):
        made = await router.stub.CreateBatch(create)
        (job,) = jobs._jobs.values()
        fake.state.release()
        assert await jobs.settle(10) == 0
    assert job.task is not None and job.task.exception() is None  # said in the log
    assert unhandled == []
    assert f"batch {made.batch.id}: ending it failed" in caplog.text
    ended = await router.runtime.batches.get("", made.batch.id)
    assert ended.status == "failed" and [e.code for e in ended.errors] == ["batch_failed"]
    assert ended.request_counts.completed == 2  # answered, though not written out
    assert await router.runtime.batches.runs.running() == []  # nobody takes it over again
