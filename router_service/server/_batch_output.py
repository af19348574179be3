"""A batch's end: its output and error files written from its answers' pages (OpenAI's JSON
lines, each file in the input's order whatever order the lines answered in: answers to the
output file; to the error file the lines that failed and those not run, with `error`
`batch_expired`, `batch_cancelled` or, when the batch failed, its own error code), then its
final status, unless a cancel came first; then its pages deleted and the batch out of the
index of running batches. Every line is counted once however the batch ends: `completed` its
answers, `failed` every other line (`failed` + `completed` = `total`), and every ending once in
`switchboard.batches.ended`, where its end is written. A bug as it ends fails it
(`batch_failed`), its end written still."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

import orjson

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import (
    ENDED,
    OUTPUT_PURPOSE,
    STOPPED_MESSAGE,
    BatchLine,
    LineResult,
    ending_mark,
    failed,
    marked_ending,
    output_file_id,
    shared_throughout,
)
from router_service.errors import StoreUnavailableError, SwitchboardError
from router_service.responses import CANCELLED
from router_service.server._batch_lines import LineCaller
from router_service.telemetry import current

__all__ = ["FAILED_BY_BUG", "finish"]

log = logging.getLogger("switchboard.router")

# Why a batch failed whose run, or end, raised what the router does not expect (its log says).
FAILED_BY_BUG = ("batch_failed", "The router failed running this batch: create it again.")

# A batch's end read (no answers) or written on this replica's local state is not the one every
# replica reads: it is let go, as when the store refuses its files, and ended where taken over.
_ENDED_LOCALLY = "the shared state store was unreachable as it ended: another replica ends it."

# A line not run, in the error file as OpenAI's (its `BatchRequestOutput.error` codes), by how
# the batch ended.
_NOT_RUN = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": ("batch_cancelled", "The batch was cancelled before this request executed."),
}


async def finish(
    who: LineCaller,
    batch: bpb.Batch,
    lines: Sequence[BatchLine],
    how: str,
    fault: tuple[str, str] | None = None,
) -> str:
    """End `batch` (`how`: "done", "expired", "cancelled", "stopped", or "fault": `fault`'s
    code and message) with what its lines answered, and write it; its status. The store's
    error is the caller's (another replica ends it); a bug ends it `failed` all the same."""
    runtime, client = who.runtime, who.client
    records = runtime.batches
    pages, before = 0, runtime.store.outage_counts()
    try:
        pages = await _ended(who, batch, lines, how, fault)
        shared_throughout(runtime.store, before, _ENDED_LOCALLY)
    except StoreUnavailableError:
        raise
    except Exception:  # else it read `finalizing` for good (on a shared store: taken over,
        # and failing again, round after round)
        log.exception("batch %s: ending it failed", batch.id)
        if batch.status not in ENDED:
            failed(batch, *FAILED_BY_BUG, int(runtime.clock.now()))
        counts = batch.request_counts  # its run's, when its end failed before counting them
        counts.failed = counts.total - counts.completed  # its lines not answered: not run
    await records.write(client, batch)
    shared_throughout(runtime.store, before, _ENDED_LOCALLY)
    # Counted where its end is written: once, whoever stops the runner meanwhile (a cancel
    # coming as it ends), and never where it was handed over.
    current().metrics.batches_ended.add(1, {"status": batch.status})
    try:
        await records.answers.forget(client, batch.id, pages)
        await records.forget_lines(client, batch.id)
        await records.runs.delist((client, batch.id))
    except StoreUnavailableError:
        raise
    except Exception:  # its end stands: its pages expire, a replica taking it over delists it
        log.exception("batch %s: clearing it after its end failed", batch.id)
    return batch.status


async def _ended(
    who: LineCaller,
    batch: bpb.Batch,
    lines: Sequence[BatchLine],
    how: str,
    fault: tuple[str, str] | None,
) -> int:
    """Write `batch` `finalizing`, its files, and set (not write) its final status; how many
    answer pages it had. Whichever ends it first, its runner or a cancel, decides (its end
    mark): a cancel that came first ends it `cancelled`, one after is refused; a runner's
    mark written before (its runner stopped as it ended it) ends it as that runner would."""
    runtime, client = who.runtime, who.client
    records = runtime.batches
    # Not during an outage: a mark kept on local state would decide how the batch ends where
    # this replica takes it over, whatever the shared store says.
    shared_throughout(runtime.store, runtime.store.outage_counts(), _ENDED_LOCALLY)
    if how != "cancelled":  # (a cancel wrote its mark)
        mark = await records.marks.end(client, batch.id, ending_mark(how, fault))
        if mark == CANCELLED:
            how = "cancelled"
        elif (ending := marked_ending(mark)) is not None:  # this one's, or that of a runner
            how, fault = ending  # that began to end it before it was taken over
    batch.status, batch.finalizing_at = "finalizing", int(runtime.clock.now())
    await records.write(client, batch)
    answered = await records.answers.answered(client, batch.id)
    _count(batch, answered.results)
    unkept = await _write_files(who, batch, answered.results, lines, _not_run_error(how, fault))
    if unkept is not None:
        how, fault = "fault", ("output_not_kept", unkept)
    now = int(runtime.clock.now())
    if how == "done":
        batch.status, batch.completed_at = "completed", now
    elif how == "cancelled":
        batch.status, batch.cancelled_at = "cancelled", now
        batch.cancelling_at = batch.cancelling_at or now
    elif how == "expired":
        batch.status, batch.expired_at = "expired", now
    elif how == "fault" and fault is not None:
        failed(batch, *fault, now)
    else:
        failed(batch, "replica_stopped", STOPPED_MESSAGE, now)
    return answered.pages


async def _write_files(
    who: LineCaller,
    batch: bpb.Batch,
    results: Sequence[LineResult],
    lines: Sequence[BatchLine],
    not_run: tuple[str, str] | None,
) -> str | None:
    """Write `batch`'s output and error files, each in the input's order (`results` are in the
    order they answered in); in the error file too the lines of `lines` not answered, with
    `not_run`'s error (None: its lines all ran); why they could not be kept, if so."""
    answered = {r.number: r for r in results}
    outputs = [answered[n].output for n in sorted(answered) if answered[n].ok]
    errors = [(number, result.output) for number, result in answered.items() if not result.ok]
    if not_run is not None:
        errors += [(ln.number, _unrun(ln, *not_run)) for ln in lines if ln.number not in answered]
    errors.sort(key=lambda numbered: numbered[0])
    try:
        if outputs:
            batch.output_file_id = await _keep(who, batch, "output", outputs)
        if errors:
            batch.error_file_id = await _keep(who, batch, "error", [e for _, e in errors])
    except StoreUnavailableError:  # not the batch's fault: another replica writes its end (a
        raise  # file kept already is the batch's, kept once: `_keep`)
    except SwitchboardError as exc:  # over the client's file quota, or the store's room
        return f"The batch's output could not be kept: {exc.message}"
    return None


def _count(batch: bpb.Batch, results: Sequence[LineResult]) -> None:
    """`batch`'s request counts and usage as `results` make them: each line counted once,
    `failed` when it did not answer (not run: expired, cancelled, the batch failed)."""
    counts = batch.request_counts
    counts.total = max(counts.total, len(results))
    counts.completed = sum(1 for r in results if r.ok)
    counts.failed = counts.total - counts.completed
    usage = batch.usage
    usage.input_tokens = sum(r.input_tokens for r in results)
    usage.output_tokens = sum(r.output_tokens for r in results)
    usage.cached_tokens = sum(r.cached_tokens for r in results)
    usage.reasoning_tokens = sum(r.reasoning_tokens for r in results)
    usage.total_tokens = usage.input_tokens + usage.output_tokens


async def _keep(who: LineCaller, batch: bpb.Batch, kind: str, lines: list[dict[str, Any]]) -> str:
    """Keep the batch's `kind` file (for as long as its create asked), once: where its end is
    written again (taken over, its runner stopped after its files were kept) the file kept is
    its, charged once."""
    content = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    filename, file_id = f"{batch.id}_{kind}.jsonl", output_file_id(batch.id, kind)
    files = who.runtime.files
    # Checked when the batch was made: a reload's shorter `files.ttl_s` bounds it now.
    ttl_s = files.asked_ttl_s(batch.output_expires_after_s, "output_expires_after.seconds")
    kept = await files.keep(
        who.client, filename, OUTPUT_PURPOSE, content, file_id=file_id, ttl_s=ttl_s
    )
    return kept.id


def _not_run_error(how: str, fault: tuple[str, str] | None) -> tuple[str, str] | None:
    """The error of a line not run, by how its batch ended (None: "done", all ran)."""
    if how == "done":
        return None
    if how in _NOT_RUN:
        return _NOT_RUN[how]
    code, message = fault if how == "fault" and fault else ("replica_stopped", STOPPED_MESSAGE)
    return code, f"The batch failed before this request executed: {message}"


def _unrun(line: BatchLine, code: str, message: str) -> dict[str, Any]:
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": line.custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
