"""The batches this replica runs (`CreateBatch`, `CancelBatch`).

A batch is owned by the router process that took it, not by the call: its task outlives the
call, and the server stops it on its way down (`shutdown`: the same grace as open calls, then
each is stopped and written `failed`, what it answered written out). What every replica reads is
in the state store (`router_service/batches/_records.py`); this module writes a batch's
transitions there: `validating` (waiting for one of the replica's `batches.max_running` slots)
→ `in_progress` (its lines run, `batches.concurrency` at a time, each as the client's own call:
`_batch_lines.py`; its `request_counts` written as they go) → `finalizing` (its output and error
files written) → `completed`, or `cancelled` (a cancel: lines not answered are not run),
`expired` (its completion window ended: lines not run go to the error file) or `failed`.
A cancel on another replica reaches the runner through the batch's end mark, and the replica
renews its batches' heartbeats, with the watcher background responses use (`_jobs.py`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from dataclasses import dataclass, field

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.auth import current_caller
from router_service.batches import (
    ENDED,
    ENDPOINTS,
    BatchLine,
    BatchNotCancellableError,
    parse_lines,
)
from router_service.cancellation import uncut
from router_service.errors import InvalidRequestError, StoreUnavailableError
from router_service.responses import CANCELLED, JobId, checked_metadata
from router_service.runtime import Runtime
from router_service.server._batch_lines import LineCaller, LineResult, run_line
from router_service.server._batch_output import finish
from router_service.server._calls import owner_name
from router_service.server._interceptors import gate_for
from router_service.server._jobs import OwnedJobs

__all__ = ["BatchJobs"]


@dataclass(eq=False)
class BatchJob:
    batch: bpb.Batch
    lines: list[BatchLine]
    who: LineCaller
    results: list[LineResult] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    stop: str = ""  # why its task was cancelled: "cancelled", "stopped"
    started: bool = False  # its task ran (one cancelled before never runs its cleanup)
    writing: asyncio.Lock = field(default_factory=asyncio.Lock)
    key: JobId = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.who.client, self.batch.id)


class BatchJobs(OwnedJobs[BatchJob]):
    def __init__(self) -> None:
        super().__init__()
        self._slots: asyncio.Semaphore | None = None  # batches.max_running (as at the first)

    async def start(self, runtime: Runtime, request: bpb.CreateBatchRequest) -> bpb.Batch:
        """Check the request and its input file, keep the batch and start its job; the batch
        as created (`failed` already when the file has bad lines)."""
        if self._closed:
            raise StoreUnavailableError("The router is stopping: create the batch again.")
        caller = current_caller()
        assert caller is not None  # every RouterService call is admitted first
        client = owner_name(caller)
        _check(request)
        metadata = checked_metadata(request.metadata_json)
        found = await runtime.files.content(client, request.input_file_id, "input_file_id")
        if found.file.purpose != "batch":
            raise InvalidRequestError(
                "The input file must be uploaded with purpose 'batch'.", param="input_file_id"
            )
        config = runtime.config.batches
        lines, errors = parse_lines(found.content, request.endpoint, config.max_lines)
        now = int(runtime.clock.now())
        batch = bpb.Batch(
            id=f"batch_{secrets.token_hex(16)}",
            endpoint=request.endpoint,
            input_file_id=request.input_file_id,
            completion_window=request.completion_window,
            status="failed" if errors else "validating",
            created_at=now,
            expires_at=now + int(config.completion_window_s),
            failed_at=now if errors else 0,
            errors=errors,
            metadata_json=metadata,
            request_counts=bpb.BatchRequestCounts(total=len(lines)),
        )
        await runtime.batches.begin(client, batch)
        if errors:
            return batch
        who = LineCaller(runtime, gate_for(runtime), caller, client, request.endpoint, batch.id)
        running = bpb.Batch()
        running.CopyFrom(batch)  # the job's own, rewritten as it runs
        job = BatchJob(running, lines, who)
        job.task = asyncio.create_task(self._run(job), name=f"switchboard-{batch.id}")
        self._jobs[job.key] = job
        marks = runtime.batches.marks
        self._watch(marks, runtime.clock, marks.config.background_heartbeat_s)
        return batch

    async def cancel(self, runtime: Runtime, client: str, batch_id: str) -> bpb.Batch:
        """Cancel `client`'s batch wherever it runs: the batch `cancelling` (`cancelled` once
        its runner here has ended it); one cancelled already, as it is."""
        batch = await runtime.batches.get(client, batch_id)
        if batch.status in ("cancelling", "cancelled"):
            return batch
        won = batch.status not in ENDED
        if won:
            won = await runtime.batches.marks.end(client, batch_id, CANCELLED) == CANCELLED
        if not won:  # ended as it was read, or just now (its end mark came first)
            ended = batch.status if batch.status in ENDED else "finishing"
            raise BatchNotCancellableError(f"Cannot cancel a batch that is {ended}.")
        job = self._jobs.get((client, batch_id))
        if job is not None and job.task is not None:
            self._stop(job, "cancelled")
            await asyncio.wait([job.task])  # it writes itself cancelled
            return await runtime.batches.get(client, batch_id)
        batch.status = "cancelling"
        batch.cancelling_at = int(runtime.clock.now())
        return batch

    async def _run(self, job: BatchJob) -> None:
        runtime = job.who.runtime
        if self._slots is None:
            self._slots = asyncio.Semaphore(runtime.config.batches.max_running)
        how = "stopped"
        try:
            try:
                job.started = True
                if job.stop:  # stopped before its task ran
                    raise asyncio.CancelledError
                async with self._slots:
                    job.batch.status = "in_progress"
                    job.batch.in_progress_at = int(runtime.clock.now())
                    await runtime.batches.write(job.who.client, job.batch)
                    how = await self._lines(job)
            except asyncio.CancelledError:
                await uncut(finish(job.who, job.batch, job.results, job.lines, job.stop))
                raise
            await uncut(finish(job.who, job.batch, job.results, job.lines, how))
        finally:
            self._jobs.pop(job.key, None)

    async def _lines(self, job: BatchJob) -> str:
        """Run the job's lines, a few at a time: "done", or "expired" when its completion
        window ended first."""
        runtime = job.who.runtime
        pending = deque(job.lines)

        async def worker() -> None:
            while pending:
                result = await run_line(job.who, pending.popleft())
                job.results.append(result)
                await self._progress(job, result)

        concurrency = min(runtime.config.batches.concurrency, len(job.lines))
        left_s = max(0.0, job.batch.expires_at - runtime.clock.now())
        try:
            async with asyncio.timeout(left_s), asyncio.TaskGroup() as group:
                for _ in range(concurrency):
                    group.create_task(worker())
        except TimeoutError:
            return "expired"
        return "done"

    async def _progress(self, job: BatchJob, result: LineResult) -> None:
        """Count `result` and write the batch's counts, unless a write is under way (the next
        one, or the last, writes them)."""
        counts = job.batch.request_counts
        if result.ok:
            counts.completed += 1
        else:
            counts.failed += 1
        if job.writing.locked():
            return
        async with job.writing:
            await job.who.runtime.batches.write(job.who.client, job.batch)


def _check(request: bpb.CreateBatchRequest) -> None:
    if request.endpoint not in ENDPOINTS:
        raise InvalidRequestError(
            f"Invalid endpoint {request.endpoint!r}: a batch runs one of {', '.join(ENDPOINTS)}.",
            param="endpoint",
            code="invalid_endpoint",
        )
    if request.completion_window != "24h":
        raise InvalidRequestError("`completion_window` must be '24h'.", param="completion_window")
