"""The batches this replica runs (`CreateBatch`, `CancelBatch`), and those it takes over.

A batch is run by one router process at a time, the holder of its claim (`BatchRuns`), not by
the call: its task outlives the call. What every replica reads is in the state store
(`router_service/batches/_records.py`); this module writes a batch's transitions there:
`validating` (waiting for one of the replica's `batches.max_running` slots) → `in_progress` (its
lines run, `batches.concurrency` at a time, each as the client's own call: `_batch_lines.py`;
each answer written to the store as it comes, its `request_counts` as they go) → `finalizing`
(its output and error files written from the answers) → `completed`, or `cancelled` (a cancel:
lines not answered are not run), `expired` (its completion window ended: lines not run go to
the error file) or `failed`.

A cancel on another replica reaches the runner through the batch's end mark, and the replica
renews its claims, with the watcher background responses use (`_jobs.py`). A stopping replica
gives its batches the same grace as open calls, then stops them: on a shared store (Redis) it
lets their claims go and another replica takes each over (`adopt`: it looks for batches in the
running index that nobody holds, when it starts and every third of `batches.heartbeat_s`),
running the lines not answered; a crashed replica's claims expire after the heartbeat. A line
that was in flight is run again (at least once upstream), its answer kept once (`answered`).
On the memory store (one process) nobody can: a stopping replica ends its batches `failed`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.auth import current_caller
from router_service.batches import (
    ENDED,
    Answered,
    AnswersNotKeptError,
    BatchLine,
    BatchNotCancellableError,
    BatchWaitLimitError,
    LineResult,
    check_create,
    shared_throughout,
)
from router_service.cancellation import uncut
from router_service.errors import (
    ReplicaStoppingError,
    StoreUnavailableError,
    SwitchboardError,
)
from router_service.responses import CANCELLED
from router_service.runtime import Runtime
from router_service.server._batch_create import new_batch
from router_service.server._batch_job import (
    BatchJob,
    expired_waiting,
    job_for,
    lines_loaded,
    new_owner,
    released,
    reloaded,
    resumed,
    window_end,
    within_window,
    written,
)
from router_service.server._batch_lines import LineCaller, run_line
from router_service.server._batch_output import FAILED_BY_BUG, finish
from router_service.server._calls import owner_name
from router_service.server._jobs import OwnedJobs
from router_service.server._line_slots import LineSlot, LineSlots
from router_service.server._slots import Slots
from router_service.telemetry import current

__all__ = ["BatchJobs"]

log = logging.getLogger("switchboard.router")

_RETRY_AFTER_S = 5.0  # a batch refused as over `batches.max_waiting_per_client`
_NOT_CANCELLABLE_NOW = (
    "The shared state store is unreachable: the batch cannot be cancelled now; try again shortly."
)


class BatchJobs(OwnedJobs[BatchJob]):
    def __init__(self, runtime_of: Callable[[], Runtime] | None = None) -> None:
        """`runtime_of`: the runtime serving now (a config reload replaces it), which each line
        runs on; None: the one each batch began on."""
        super().__init__()
        self.runtime_of = runtime_of
        self._slots: Slots | None = None  # batches.max_running, as the runtime serving says
        self._adopter: asyncio.Task[None] | None = None
        # One round of `adopt` at a time: a round asked for while another runs finds what that
        # one took among its jobs.
        self._adopting = asyncio.Lock()

    def _serving(self, began_on: Runtime) -> Runtime:
        """The runtime serving now (a reload's); with no `runtime_of`, the one a batch began on."""
        return began_on if self.runtime_of is None else self.runtime_of()

    def reconfigured(self) -> None:
        """A reload came into force: its `batches.max_running` lets waiting batches start."""
        if self._slots is not None:
            self._slots.resized()

    async def start(self, runtime: Runtime, request: bpb.CreateBatchRequest) -> bpb.Batch:
        """Check the request and its input file, keep the batch and start its job; the batch
        as created (`failed` already when the file has bad lines)."""
        if self._closed:
            raise ReplicaStoppingError("The router is stopping: create the batch again.")
        caller = current_caller()
        assert caller is not None  # every RouterService call is admitted first
        client = owner_name(caller)
        check_create(request)
        self._refuse_past_waiting(runtime, client)
        batch, lines = await new_batch(runtime, client, request)
        if batch.status == "failed":  # it ended here, as it began: counted as every ending is
            await runtime.batches.begin(client, batch)
            current().metrics.batches_ended.add(1, {"status": batch.status})
            return batch
        # Claimed before it is in the running index: no other replica takes it over.
        claim = await runtime.batches.runs.claim((client, batch.id), new_owner())
        assert claim is not None  # a new id: nobody else holds it
        try:
            await runtime.batches.begin(client, batch, lines)
        except BaseException:
            await uncut(runtime.batches.runs.release((client, batch.id), claim))
            raise
        who = LineCaller(runtime, caller, client, request.endpoint, batch.id)
        running = bpb.Batch()
        running.CopyFrom(batch)  # the job's own, rewritten as it runs
        self._launch(job_for(running, who, claim, Answered()))
        return batch

    def _refuse_past_waiting(self, runtime: Runtime, client: str) -> None:
        """Refuse a new batch of `client` when `batches.max_waiting_per_client` of its batches
        wait for a slot here already."""
        most = runtime.config.batches.max_waiting_per_client
        waiting = sum(
            1 for job in self._jobs.values() if job.key[0] == client and not job.holds_slot
        )
        if waiting >= most:
            raise BatchWaitLimitError(
                f"This client has {most} batches waiting to run already "
                "(batches.max_waiting_per_client): create this one once one of them runs.",
                retry_after_s=_RETRY_AFTER_S,
            )

    async def cancel(self, runtime: Runtime, client: str, batch_id: str) -> bpb.Batch:
        """Cancel `client`'s batch wherever it runs: the batch `cancelling` (`cancelled` once
        its runner here has ended it); one cancelled already, as it is."""
        store, before = runtime.store, runtime.store.outage_counts()
        try:  # read on the shared store: one kept only here during an outage is not the batch
            batch = await runtime.batches.get(client, batch_id)
        finally:  # (nor is one not found here then: unknown, not gone)
            shared_throughout(store, before, _NOT_CANCELLABLE_NOW)
        if batch.status in ("cancelling", "cancelled"):
            return batch
        won = batch.status not in ENDED
        if won:
            won = await runtime.batches.marks.end(client, batch_id, CANCELLED) == CANCELLED
            # A mark taken on local state: the replica taking the batch over never reads it.
            shared_throughout(store, before, _NOT_CANCELLABLE_NOW)
        if not won:  # ended as it was read, or just now (its end mark came first)
            ended = batch.status if batch.status in ENDED else "finalizing"
            raise BatchNotCancellableError(f"Cannot cancel a batch with status '{ended}'.")
        job = self._jobs.get((client, batch_id))
        if job is not None and job.task is not None:
            self._stop(job, "cancelled")
            await asyncio.wait([job.task])  # it writes itself cancelled
            return await runtime.batches.get(client, batch_id)
        batch.status = "cancelling"
        batch.cancelling_at = int(runtime.clock.now())
        return batch

    def adopting(self) -> None:
        """Take over orphaned batches now and every third of `batches.heartbeat_s`, until
        `shutdown`, on the runtime serving (on a shared store: `LongJobs.serve_batches`)."""
        assert self.runtime_of is not None
        if self._adopter is None:
            self._adopter = asyncio.create_task(self._adopt_often(self.runtime_of))

    async def adopt(self, runtime: Runtime) -> int:
        """Take over the running batches nobody holds (their runner stopped, or crashed and its
        claim expired), as this replica's slots allow; how many it took."""
        async with self._adopting:
            runs, taken = runtime.batches.runs, 0
            running = [key for key in await runs.running() if key not in self._jobs]
            held = await runs.held(running)
            for key in [key for key, holder in zip(running, held, strict=True) if not holder]:
                if self._closed or len(self._jobs) >= runtime.config.batches.max_running:
                    break
                claim = await runs.claim(key, new_owner())
                if claim is None:  # another replica took it first
                    continue
                try:
                    job = await resumed(runtime, key, claim)
                except BaseException:  # the store failed: another round, or replica, retries
                    await uncut(runs.release(key, claim))
                    raise
                if job is not None:
                    answered = len(job.answered)
                    log.info("batch %s: taken over (%d lines answered)", key[1], answered)
                    self._launch(job)
                    taken += 1
            return taken

    async def shutdown(self, grace_s: float) -> None:
        """Take over nothing more, then stop the batches as `OwnedJobs.shutdown` does (on a
        shared store each is handed over, not failed: `_end`)."""
        self.close()
        if self._adopter is not None:
            self._adopter.cancel()
            await asyncio.gather(self._adopter, return_exceptions=True)
        await super().shutdown(grace_s)

    async def _adopt_often(self, runtime_of: Callable[[], Runtime]) -> None:
        while not self._closed:
            runtime = runtime_of()
            try:
                await self.adopt(runtime)
            except SwitchboardError as exc:  # the store failed: the next round tries again
                log.warning("batches: taking over orphans failed: %s", exc.message)
            except Exception:  # a bug must not end the loop: orphans would wait forever
                log.exception("batches: taking over orphans failed; the next round tries again")
            await asyncio.sleep(runtime.config.batches.heartbeat_s / 3)

    def _launch(self, job: BatchJob) -> None:
        runtime = job.who.runtime
        job.task = asyncio.create_task(self._run(job), name=f"switchboard-{job.batch.id}")
        self._jobs[job.key] = job
        heartbeat_s = runtime.config.batches.heartbeat_s
        self._watch(runtime.batches.marks, runtime.clock, heartbeat_s, self._renew)

    async def _renew(self, jobs: list[BatchJob]) -> None:
        """Renew the claims of `jobs`; stop those another replica holds now."""
        renewed = await asyncio.gather(*(_renewed(job) for job in jobs))
        for job, held in zip(jobs, renewed, strict=True):
            if not held:
                log.warning("batch %s: another replica runs it now; stopping", job.batch.id)
                self._stop(job, "lost")

    async def _run(self, job: BatchJob) -> None:
        runtime = job.who.runtime
        if self._slots is None:
            self._slots = Slots(lambda: self._serving(runtime).config.batches.max_running)
        metrics = current().metrics
        try:
            try:
                job.started = True
                if job.stop:  # stopped before its task ran
                    raise asyncio.CancelledError
                # Its window ends as it waits too: it expires then, not once a slot frees.
                async with self._slots.slot_unless(window_end(job)) as held:
                    job.holds_slot = held  # counted running from now (not while it waits)
                    if held:
                        metrics.batches_running.add(1, {})
                    how = await (self._started(job) if held else expired_waiting(job))
            except asyncio.CancelledError:
                await uncut(self._end(job, job.stop))
                raise
            except Exception:  # a bug: the batch fails, its answers written, not left running
                log.exception("batch %s: running it failed", job.batch.id)
                job.fault, how = FAILED_BY_BUG, "fault"
            # A cancel as it ends is raised once it ended, counted (`finish`: where its end is
            # written) with the status it ended with.
            await uncut(self._end(job, how))
        finally:
            if job.holds_slot:
                metrics.batches_running.add(-1, {})
            self._jobs.pop(job.key, None)
            await uncut(released(job))

    async def _started(self, job: BatchJob) -> str:
        """Read the job's lines, mark it `in_progress` and run them (`_lines`); "stopped" when
        the store could not give its input file or keep its start (as when it takes no
        answer)."""
        runtime = job.who.runtime
        if not await lines_loaded(job):
            return "stopped"
        if job.fault is not None:  # its lines did not validate here (or cannot run): it ends
            return "fault"  # from `validating`, never read `in_progress`
        if job.batch.status == "validating":
            job.batch.status = "in_progress"
            job.batch.in_progress_at = int(runtime.clock.now())
            if not await written(job):  # handed over, as when its answers are not kept
                return "stopped"
        return await self._lines(job)

    async def _end(self, job: BatchJob, how: str) -> str:
        """End the job as `how` says (`finish`, which counts its end); the status it ended
        with ("" when another replica goes on with it)."""
        runtime, client = job.who.runtime, job.who.client
        try:
            if how != "lost" and not await _renewed(job):
                how = "lost"  # it paused past its heartbeat, and another took it meanwhile
            if how == "lost":
                return ""
            if how == "cancelled" and not job.lines:  # its lines never read: listed cancelled
                job.loaded = False  # (waiting for a slot, or taken over `cancelling`)
                if not await lines_loaded(job):  # let go, as one expiring waiting: its lines
                    how = "stopped"  # are listed where it is taken over, its counts whole
            if how == "stopped" and runtime.config.state.backend != "memory":
                await runtime.batches.write(client, job.batch)  # its counts; then handed over
                return ""
            return await finish(job.who, job.batch, job.lines, how, job.fault)
        except StoreUnavailableError as exc:  # another replica ends it (its files kept once)
            log.warning("batch %s: its end was not written: %s", job.batch.id, exc.message)
            return ""

    async def _lines(self, job: BatchJob) -> str:
        """Run the job's lines not answered, a few at a time (`LineSlots`): "done", "expired"
        when its completion window ended first, "fault" when it cannot go on, "stopped" when
        the store took no answer (Redis lost: another replica goes on with it once its claim
        expired)."""
        runtime, pending = job.who.runtime, job.pending
        halted = "fault" if job.fault is not None else ""

        async def line(slot: LineSlot, taken: BatchLine) -> None:
            nonlocal halted
            try:
                result = await run_line(replace(job.who, aside=slot.aside), taken)
                kept = await self._kept(job, result)  # written whoever halted meanwhile
                halted = halted or kept
            finally:
                slot.give()

        async def lines() -> None:
            nonlocal halted
            slots = LineSlots(concurrency)
            async with asyncio.TaskGroup() as group:
                while pending and not halted:
                    slot = await slots.take()
                    if not (pending and not halted and self._on_serving_runtime(job)):
                        halted = halted or ("fault" if pending else "")  # its client is gone
                        slot.give()
                        return
                    group.create_task(line(slot, pending.popleft()))

        if halted or not pending:
            return halted or "done"
        concurrency = min(runtime.config.batches.concurrency, len(pending))
        if job.batch.expires_at <= runtime.clock.now():
            return "expired"
        if not await within_window(job, lines()):
            return "expired"
        return halted or "done"

    async def _kept(self, job: BatchJob, result: LineResult) -> str:
        """Write a line's answer and count it: "" when kept, else why the job halts ("fault":
        its answers cannot be kept; "stopped": the store took no answer, the line runs again
        where the job goes on)."""
        try:
            await job.writer.add(result)
        except AnswersNotKeptError as exc:
            job.fault = ("output_not_kept", exc.message)
            return "fault"
        except StoreUnavailableError as exc:
            log.warning("batch %s: answers not kept: %s", job.batch.id, exc.message)
            return "stopped"
        await self._progress(job, result)
        return ""

    def _on_serving_runtime(self, job: BatchJob) -> bool:
        """Move the job onto the runtime serving now, if a reload replaced its own: a line
        that starts after a reload runs on its config, as any call would (a key rotated out is
        not used for the rest of a 24-hour batch); False when its client is gone."""
        runtime = self._serving(job.who.runtime)
        return runtime is job.who.runtime or reloaded(job, runtime)

    async def _progress(self, job: BatchJob, result: LineResult) -> None:
        """Count `result` and write the batch's counts, unless a write is under way (the next
        one, or the last, writes them)."""
        counts = job.batch.request_counts
        if result.ok:
            counts.completed += 1
        else:
            counts.failed += 1
        current().metrics.batch_lines.add(1, {"outcome": "completed" if result.ok else "failed"})
        if job.writing.locked():
            return
        async with job.writing:
            await written(job)  # counts not written now are with the next write, or its end


async def _renewed(job: BatchJob) -> bool:
    """Whether the job's claim is still its replica's (renewed)."""
    return await job.who.runtime.batches.runs.renew(job.key, job.claim)
