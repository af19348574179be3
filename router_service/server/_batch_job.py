"""A batch as its runner holds it (`BatchJob`): the lines left to run, where their answers go,
its claim; made for a new batch (`_batches.py`) or for one taken over from a replica that
stopped (`resumed`: the lines its pages do not answer, as its client's calls now; none when
its runner had begun to end it), and moved onto a reloaded config between lines (`reloaded`)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.auth import ANONYMOUS, Caller
from router_service.batches import (
    ENDED,
    Answered,
    AnswerWriter,
    BatchLine,
    BatchNotFoundError,
    Claim,
    StoredFileNotFoundError,
    marked_ending,
    parse_lines,
    shared_throughout,
)
from router_service.cancellation import uncut
from router_service.errors import StoreUnavailableError
from router_service.responses import JobId
from router_service.runtime import Runtime
from router_service.server._batch_lines import LineCaller
from router_service.server._server_info import replica_name

__all__ = [
    "BatchJob",
    "claim_replica",
    "expired_waiting",
    "input_content",
    "job_for",
    "lines_loaded",
    "load_lines",
    "new_owner",
    "released",
    "reloaded",
    "resumed",
    "window_end",
    "within_window",
    "written",
]

log = logging.getLogger("switchboard.router")

_NOT_READ = (
    "The shared state store is unreachable: the batch's input file cannot be read now; "
    "try again shortly."
)
_CLIENT_GONE = ("client_not_found", "The client that created this batch is not configured.")


@dataclass(eq=False)
class BatchJob:
    batch: bpb.Batch  # the runner's own, rewritten as it runs
    who: LineCaller
    claim: Claim
    writer: AnswerWriter
    answered: set[int]  # the numbers of the lines answered before this runner took it
    # Its input's lines, read once it has a slot (`load_lines`): a batch waiting for one holds
    # none (a client's many batches of one large file would otherwise fill the replica).
    lines: list[BatchLine] = field(default_factory=list)  # all (those not run expire)
    pending: deque[BatchLine] = field(default_factory=deque)  # those not answered yet
    loaded: bool = False  # `lines` read, or nothing to read (at fault)
    holds_slot: bool = False  # it runs (else it waits for one of `batches.max_running`)
    task: asyncio.Task[None] | None = None
    stop: str = ""  # why its task was cancelled: "cancelled", "stopped", "lost"
    started: bool = False  # its task ran (one cancelled before never runs its cleanup)
    # Why it fails as a whole before its lines are done (code, message): its answers cannot
    # be kept, its client or input file is gone.
    fault: tuple[str, str] | None = None
    # Taken over from a runner that had begun to end it (its end mark says how: `finish` ends
    # it so): no line runs, as none would have there (and a cancel is refused meanwhile).
    ending: bool = False
    writing: asyncio.Lock = field(default_factory=asyncio.Lock)
    key: JobId = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.who.client, self.batch.id)


def new_owner() -> str:
    """A runner's owner token for one claim: its replica's name first, so that an operator
    sees which replica runs a batch (`claim_replica`)."""
    return f"{replica_name()}/{secrets.token_hex(8)}"


def claim_replica(owner: str) -> str:
    """The replica named in an owner token ("" for none, or one without a name)."""
    return owner.rpartition("/")[0]


def job_for(batch: bpb.Batch, who: LineCaller, claim: Claim, answered: Answered) -> BatchJob:
    """The job running `batch`'s lines but those `answered` already (read by `load_lines`)."""
    writer = who.runtime.batches.answers.writer(who.client, batch.id, answered)
    return BatchJob(batch, who, claim, writer, answered.numbers)


async def load_lines(job: BatchJob) -> None:
    """Read and parse the job's input file, once: its lines not answered are pending (none of
    one `ending`). One at fault already (taken over, its client gone) has them read too, to be
    listed not run (no line runs: `_lines`); its fault stays the one it has."""
    if job.loaded:
        return
    runtime, batch = job.who.runtime, job.batch
    try:
        found = await input_content(runtime, job.who.client, batch.input_file_id)
    except StoredFileNotFoundError:  # its lines as kept when it began, to list those not run
        before = runtime.store.outage_counts()
        kept = await runtime.batches.kept_lines(job.who.client, batch.id)
        shared_throughout(runtime.store, before, _NOT_READ)  # (none on local state: unknown)
        job.lines = kept or []
        job.fault = job.fault or ("input_file_not_found", _input_gone(job, listed=kept is not None))
        return
    job.lines, errors = parse_lines(found.content, batch.endpoint, runtime.config.batches.max_lines)
    if errors:  # checked when the batch was made: by a replica of another version (a deploy)
        first = errors[0]
        at = f"line {first.line}: " if first.line else ""
        job.fault = job.fault or (
            "invalid_input_file",
            f"The batch's input file no longer validates ({at}{first.message})",
        )
        return
    if not job.ending:
        job.pending = deque(line for line in job.lines if line.number not in job.answered)
    job.loaded = True


async def input_content(runtime: Runtime, client: str, file_id: str) -> bpb.GetFileContentResponse:
    """`client`'s input file `file_id` with its content (`files.content`: one looked for on
    local state during an outage is unknown there, not gone: StoreUnavailableError)."""
    return await runtime.files.content(client, file_id, "input_file_id")


def _input_gone(job: BatchJob, *, listed: bool) -> str:
    """Why the job's input file could not be read: expired (its `expires_after`) or deleted;
    and, unless its lines are `listed` (kept as it began), that those not answered cannot be."""
    expires_at = job.batch.input_file_expires_at
    if expires_at and job.who.runtime.clock.now() >= expires_at:
        why = "The batch's input file expired before it ran."
    else:
        why = "The batch's input file was deleted before it ran."
    unlisted = job.batch.request_counts.total - len(job.answered)
    if listed or unlisted <= 0:
        return why
    return (
        f"{why} Its {unlisted} lines not answered are counted failed but not listed in an "
        "error file: their custom_ids were in the input file alone."
    )


def window_end(job: BatchJob) -> Awaitable[None]:
    """What ends when the job's completion window does, on its runtime's clock."""
    clock = job.who.runtime.clock
    return clock.wait(job.batch.expires_at - clock.now())


async def within_window(job: BatchJob, work: Awaitable[None]) -> bool:
    """Run `work` until the job's completion window ends, on the same clock as its wait for a
    slot (`window_end`: a test's ManualClock ends it too; `asyncio.timeout` reads the loop's);
    False when the window ended first, `work` cancelled and awaited (no line left running).
    `work`'s error is the caller's, one raised as it stopped at the window's end too; when the
    caller is cancelled (the batch is), it is said in the log: neither task is left behind, nor
    an error unretrieved."""
    running = asyncio.ensure_future(work)
    ending = asyncio.ensure_future(window_end(job))
    try:
        await asyncio.wait((running, ending), return_when=asyncio.FIRST_COMPLETED)
        expired = not running.done()
        error = await _stopped(running, ending)
    except BaseException:  # the batch is cancelled or stopped: its lines stop before it ends
        if (error := await _stopped(running, ending)) is not None:
            log.error("batch %s: its lines failed as they stopped", job.batch.id, exc_info=error)
        raise
    if error is not None:
        raise error
    return not expired


async def _stopped(
    running: asyncio.Future[None], ending: asyncio.Future[None]
) -> BaseException | None:
    """Cancel both and await them (again: nothing when they are done); `running`'s error, if
    it raised one (not cancelled)."""
    ending.cancel()
    running.cancel()  # nothing when it is done
    await uncut(asyncio.wait((running, ending)))
    return None if running.cancelled() else running.exception()


async def expired_waiting(job: BatchJob) -> str:
    """The end of a job whose window ended before it had a slot: "expired", its lines read to
    be written out as not run ("stopped", "fault" when they cannot be read)."""
    if not await lines_loaded(job):
        return "stopped"
    return "expired" if job.fault is None else "fault"


async def lines_loaded(job: BatchJob) -> bool:
    """Read the job's lines (`load_lines`); False when the store could not give its input
    file (the job is handed over, as when the store takes no answer)."""
    try:
        await load_lines(job)
    except StoreUnavailableError as exc:
        log.warning("batch %s: its input file was not read: %s", job.batch.id, exc.message)
        return False
    return True


async def written(job: BatchJob) -> bool:
    """Write the job's batch as it is now; False (said in the log, not raised: its runner goes
    on or hands it over) when the store took no answer."""
    try:
        await job.who.runtime.batches.write(job.who.client, job.batch)
    except StoreUnavailableError as exc:
        log.warning("batch %s: not written: %s", job.batch.id, exc.message)
        return False
    return True


async def released(job: BatchJob) -> None:
    """Let the job's claim go (said in the log when the store took no answer: it expires
    after the heartbeat)."""
    try:
        await job.who.runtime.batches.runs.release(job.key, job.claim)
    except StoreUnavailableError as exc:
        log.warning("batch %s: its claim was not let go: %s", job.batch.id, exc.message)


async def resumed(runtime: Runtime, key: JobId, claim: Claim) -> BatchJob | None:
    """The job that takes over the batch `key`, claimed (None when it has ended: its claim
    released, its entry in the running index gone)."""
    client, batch_id = key
    records = runtime.batches
    try:
        batch = await records.get(client, batch_id)
    except BatchNotFoundError:  # expired or deleted: nothing to run
        batch = None
    if batch is None or batch.status in ENDED:  # its runner's clearing after its end did
        await records.forget_lines(client, batch_id)  # not reach the store (an outage, a crash)
        await records.runs.delist(key)
        await records.runs.release(key, claim)
        return None
    caller = _caller(runtime, client)
    who = LineCaller(runtime, caller or ANONYMOUS, client, batch.endpoint, batch_id)
    answered = await records.answers.answered(client, batch_id)
    job = job_for(batch, who, claim, answered)
    if caller is None:
        job.fault = _CLIENT_GONE
    if batch.status == "cancelling":  # nothing more runs: it ends cancelled, as one stopped
        job.stop = "cancelled"  # before its task ran (its lines not answered listed cancelled)
    (mark,) = await records.marks.marks([key])
    job.ending = marked_ending(mark) is not None
    counts = batch.request_counts  # its runner may have stopped before it wrote them
    counts.completed = sum(1 for result in answered.results if result.ok)
    counts.failed = len(answered.results) - counts.completed
    return job


def reloaded(job: BatchJob, runtime: Runtime) -> bool:
    """Run the job's next lines on `runtime` (a reloaded config's: its providers' keys, its
    gate, its client's entry as configured now), as calls starting now run; False, the job at
    fault, when its client is no longer configured."""
    caller = _caller(runtime, job.who.client)
    if caller is None:
        job.fault = _CLIENT_GONE
        return False
    job.who = replace(job.who, runtime=runtime, caller=caller)
    return True


def _caller(runtime: Runtime, client: str) -> Caller | None:
    """The caller whose calls a batch's lines are, as configured now (None: gone)."""
    if not client:  # a batch of open mode's callers: theirs while the router is open
        return ANONYMOUS if runtime.config.auth.open else None
    for configured in runtime.config.auth.clients:
        if configured.name == client:
            return Caller.from_config(configured)
    return None
