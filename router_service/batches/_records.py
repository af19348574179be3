"""BatchRecords: batches in the state store, what every replica reads whichever runs them (the
runner: `router_service/server/_batches.py`).

A batch is one document (`Batch`), named by a hash of its client's name and its id, for
`files.ttl_s`; only the replica running it rewrites it (its transitions and its request
counts as they go). Beside it: its **end mark**, as for background responses
(`BackgroundRecords` of kind "batch", its own names, kept `files.ttl_s` too), written once
(by the runner as it begins to end the batch, saying how it ends it: `ending_mark`;
`cancelled` by a cancel on any replica: whoever writes first decides, and a replica taking
over a batch whose runner had begun to end it ends it as the mark says, running no line:
`marked_ending`); its answers as they come (`answers`, `_answers.py`); its lines' numbers and
custom_ids, kept as it begins (`kept_lines`: what lists its lines not run should its input
file go); its runner's claim and its place in the index of running batches (`runs`,
`_runs.py`), so that another replica takes over a batch whose runner stopped.
A reader sees a running batch with a cancel mark as `cancelling`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence

import orjson

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service._ids import looked_up_id
from router_service.batches._answers import BatchAnswers
from router_service.batches._errors import BatchNotFoundError, FileQuotaError
from router_service.batches._file_pages import page_of
from router_service.batches._index import ClientIndex
from router_service.batches._lines import BatchLine
from router_service.batches._runs import BatchRuns
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.config import BatchesConfig, FilesConfig, ResponsesConfig
from router_service.errors import InvalidRequestError, StoreUnavailableError
from router_service.responses import CANCELLED, DONE, BackgroundRecords, StoredResponses
from router_service.sessions import client_document, client_scoped
from router_service.state import StateStore, answered_locally, document_delete, kept_message

__all__ = [
    "ENDED",
    "RUNNING",
    "STOPPED_MESSAGE",
    "BatchRecords",
    "Ending",
    "answered_locally",
    "ending_mark",
    "failed",
    "marked_ending",
    "shared_throughout",
]

log = logging.getLogger("switchboard.router")

# The statuses of a batch its runner may still rewrite; and those of one that ended.
RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
ENDED = frozenset({"completed", "failed", "cancelled", "expired"})
STOPPED_MESSAGE = "The replica running this batch stopped before it finished: create it again."
_DEFAULT_LIST = 20
# A runner's end mark begins so (`done`, as a replica of an earlier version writes it whole,
# not saying how it ends the batch), how it ends it after (`ending_mark`).
_ENDING = DONE + b":"

# How a runner ends a batch: "done", "expired", "stopped", or "fault" with its (code, message).
Ending = tuple[str, tuple[str, str] | None]
_MAX_LIST = 100
# A batch's record not written for an outage (`write`): its runner lets the batch go.
_NOT_WRITTEN = "The shared state store is unreachable: the batch's state cannot be written now."
# A read answered from this replica's local state (Redis lost): the batches are unknown there.
_NOT_READ = (
    "The shared state store is unreachable from this replica: batch {} cannot be read now; "
    "try again shortly."
)
_NOT_LISTED = (
    "The shared state store is unreachable from this replica: this client's batches cannot "
    "be listed now; try again shortly."
)


class BatchRecords:
    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        config: FilesConfig,
        batches: BatchesConfig,
        responses: ResponsesConfig,
        stored: StoredResponses,
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        # End marks, kept as a background response's but apart (kind "batch") and as long as
        # the batch's record: one expired first (`responses.store_ttl_s`, an hour by default)
        # let a replica taking over the batch run its lines again.
        self.marks = BackgroundRecords(
            store, clock, responses, stored, kind="batch", mark_ttl_s=config.ttl_s
        )
        # Answers as they come: at most an output and an error file's worth.
        self.answers = BatchAnswers(store, ttl_s=config.ttl_s, max_bytes=2 * config.max_file_bytes)
        self.runs = BatchRuns(store, batches)
        self._index = ClientIndex(
            store, clock, kind="batch", period_s=config.ttl_s, max_ids=config.max_files
        )

    async def begin(self, client: str, batch: bpb.Batch, lines: Sequence[BatchLine] = ()) -> None:
        """Keep a new batch of `client` (its runner claimed it first: `runs.claim`), in the
        index of running batches unless it ended already (a bad input file), with its `lines`'
        numbers and custom_ids (`kept_lines`). All on the shared store, or StoreUnavailableError
        and what was kept of it deleted (its id was never answered), as when its call is
        cancelled meanwhile (else it ran, taken over, though nobody knows its id)."""
        if not await self._index.add(_owner(client), batch.id):
            raise FileQuotaError(
                f"This client made its {self._config.max_files} batches this period "
                "(files.max_files).",
                retry_after_s=self._index.period_left_s(),
            )
        before = self._store.outage_counts()
        try:
            # Among those running first: a record on the shared store is one a replica takes
            # over (one whose record is missing there is only delisted: `resumed`).
            if batch.status not in ENDED:
                await self.runs.enlist((client, batch.id))
                shared_throughout(self._store, before, _NOT_WRITTEN)
            if lines:
                data = orjson.dumps([[line.number, line.custom_id] for line in lines])
                # Bounded by its input file; a memory store with no room drops it (then its
                # lines not run cannot be listed should its input file go: its errors say so).
                await self._store.put_document(_lines(client, batch.id), data, self._config.ttl_s)
            await self.write(client, batch)
            shared_throughout(self._store, before, _NOT_WRITTEN)
        except (StoreUnavailableError, asyncio.CancelledError):
            await uncut(self._unbegun(client, batch.id))
            raise

    async def _unbegun(self, client: str, batch_id: str) -> None:
        """Delete what `begin` kept of a batch it refused (or whose call was cancelled), each
        part where the store takes its delete: one refused (the running-index entry's, during
        an outage: its token is on the shared store) does not keep the others. Its record and
        lines are deleted everywhere, on the shared store once it answers (`everywhere`: a
        refused batch's names are written by nobody again); a record left there was taken over
        with its running-index entry and run, though its client heard it refused. That entry,
        left, is taken over by a replica, which finds no record and delists it (`resumed`);
        its place in its client's index is given back once the store answers
        (`ClientIndex.remove`)."""
        left = []
        record, lines = _name(client, batch_id), _lines(client, batch_id)
        parts: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            ("record", lambda: self._store.everywhere("delete_document", document_delete(record))),
            ("lines", lambda: self._store.everywhere("delete_document", document_delete(lines))),
            ("running-index entry", lambda: self.runs.delist((client, batch_id))),
            # Its place among the client's `files.max_files` batches: a refused one uses none.
            ("place in its client's index", lambda: self._index.remove(_owner(client), batch_id)),
        )
        for part, delete in parts:
            try:
                await delete()
            except (StoreUnavailableError, asyncio.CancelledError):
                left.append(part)
        if left:
            log.warning(
                "batch %s: its %s not deleted (the state store is unreachable); a replica "
                "taking it over delists it, or it expires",
                batch_id,
                ", ".join(left),
            )

    async def kept_lines(self, client: str, batch_id: str) -> list[BatchLine] | None:
        """The numbers and custom_ids of the batch's lines (bodies empty), kept as it began:
        what lists its lines not run when its input file is gone (deleted, expired) before
        they ran; None when none are kept (its store dropped them, or it began elsewhere)."""
        (data,) = await self._store.get_documents([_lines(client, batch_id)])
        if data is None:
            return None
        try:
            return [
                BatchLine(int(number), str(custom_id), {})
                for number, custom_id in orjson.loads(data)
            ]
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None  # not ours (a foreign writer under the prefix): as good as absent

    async def forget_lines(self, client: str, batch_id: str) -> None:
        """Delete what `kept_lines` reads (the batch's files are written)."""
        await self._store.delete_document(_lines(client, batch_id))

    async def write(self, client: str, batch: bpb.Batch) -> None:
        """Replace `client`'s batch with `batch` (the runner's transitions)."""
        data = batch.SerializeToString()
        # On the shared store or not at all (StoreUnavailableError): one kept on this replica's
        # local state during an outage is read by no other replica (nor a cancel taken there).
        before = self._store.outage_counts()
        shared_throughout(self._store, before, _NOT_WRITTEN)
        # A batch is small (its lines are in its files): only a memory store with no room left
        # refuses it, and drops it as it drops any document past its budget (a reader then
        # finds none, as for an expired batch).
        await self._store.put_document(_name(client, batch.id), data, self._config.ttl_s)
        shared_throughout(self._store, before, _NOT_WRITTEN)

    async def get(self, client: str, batch_id: str) -> bpb.Batch:
        """`client`'s batch, as a reader must see it (`resolve`). Read on the shared store or
        StoreUnavailableError: on this replica's local state during an outage a batch is
        unknown (not NOT_FOUND), or what its runner failed to write there (not the batch)."""
        looked_up_id(batch_id, "id", "batch", BatchNotFoundError)
        before = self._store.outage_counts()
        (found,) = await self._read(client, [batch_id])
        if found is not None:
            await self.resolve(client, [found])
        shared_throughout(self._store, before, _NOT_READ.format(batch_id))
        if found is None:
            raise BatchNotFoundError(batch_id)
        return found

    async def listed(self, client: str, request: bpb.ListBatchesRequest) -> bpb.ListBatchesResponse:
        """`client`'s batches, newest first, after `request.after`; read on local state during
        an outage, StoreUnavailableError (not those it holds: none), as `get`."""
        limit = request.limit or _DEFAULT_LIST
        if not 1 <= limit <= _MAX_LIST:
            raise InvalidRequestError(f"`limit` must be 1 to {_MAX_LIST}.", param="limit")
        before = self._store.outage_counts()
        ids = await self._index.ids(_owner(client))
        if request.after:
            ids = ids[ids.index(request.after) + 1 :] if request.after in ids else []
        # Read on past the ids whose batch is gone (expired, dropped): one that expired
        # before older ones (written last) must not hide them, nor end the listing early.
        batches, more = await page_of(ids, functools.partial(self._read, client), limit=limit)
        await self.resolve(client, batches)
        shared_throughout(self._store, before, _NOT_LISTED)
        return bpb.ListBatchesResponse(batches=batches, has_more=more)

    async def unended(self) -> list[tuple[str, bpb.Batch]]:
        """The batches in the running index (not ended, on any replica), with their clients,
        as a reader sees them; those whose document is gone are left out."""
        keys = await self.runs.running()
        found = await self._store.get_documents([_name(c, i) for c, i in keys])
        owned = [
            (client, batch)
            for (client, batch_id), data in zip(keys, found, strict=True)
            if (batch := kept_message(bpb.Batch, data)) is not None and batch.id == batch_id
        ]
        await self._resolve(owned)
        return owned

    async def resolve(self, client: str, batches: Sequence[bpb.Batch]) -> None:
        """Rewrite in place, as a reader must see them, the running batches of `batches` that
        were cancelled (their runner has not written it yet). One whose runner stopped reads
        as it was until another replica takes it over."""
        await self._resolve([(client, batch) for batch in batches])

    async def _resolve(self, owned: Sequence[tuple[str, bpb.Batch]]) -> None:
        running = [(client, b) for client, b in owned if b.status in RUNNING]
        if not running:
            return
        marks = await self.marks.marks([(client, b.id) for client, b in running])
        now = int(self._clock.now())
        for (_, batch), mark in zip(running, marks, strict=True):
            if mark == CANCELLED and batch.status != "cancelling":
                batch.status = "cancelling"
                batch.cancelling_at = batch.cancelling_at or now

    async def _read(self, client: str, ids: Sequence[str]) -> list[bpb.Batch | None]:
        found = await self._store.get_documents([_name(client, i) for i in ids])
        out: list[bpb.Batch | None] = []
        for batch_id, data in zip(ids, found, strict=True):
            batch = kept_message(bpb.Batch, data)
            # The id inside guards against a (128-bit) hash collision with another's name.
            out.append(batch if batch is not None and batch.id == batch_id else None)
        return out


def shared_throughout(store: StateStore, before: dict[str, int], message: str) -> None:
    """Raise StoreUnavailableError(`message`) if a call of `store` was answered from this
    replica's local state since `before` (its `outage_counts`), or it is unreachable now: what
    a batch read or wrote there is not what every replica reads."""
    if answered_locally(store, before):
        raise StoreUnavailableError(message)


def failed(batch: bpb.Batch, code: str, message: str, now: int) -> None:
    """`batch` failed as a whole, for `message`."""
    batch.status = "failed"
    batch.failed_at = now
    batch.errors.append(bpb.BatchError(code=code, message=message))


def ending_mark(how: str, fault: tuple[str, str] | None) -> bytes:
    """The end mark of a runner that begins to end its batch as `how` (and `fault`) say."""
    return _ENDING + orjson.dumps([how, fault])


def marked_ending(mark: bytes | None) -> Ending | None:
    """How the runner that wrote `mark` was ending its batch; None when no runner began to end
    it (no mark, a cancel's) or its mark does not say (an earlier version's `done`)."""
    if mark is None or not mark.startswith(_ENDING):
        return None
    try:
        how, fault = orjson.loads(mark.removeprefix(_ENDING))
        if fault is not None:
            code, message = fault
            fault = (str(code), str(message))
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None  # not ours (a foreign writer under the prefix): as good as absent
    return str(how), fault


def _owner(client: str) -> str:
    return client_scoped(client, "")


def _name(client: str, batch_id: str) -> str:
    return client_document("batch", client, batch_id)


def _lines(client: str, batch_id: str) -> str:
    return client_document("batch-lines", client, batch_id)
