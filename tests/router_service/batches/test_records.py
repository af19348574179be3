"""A client's batches listed (memory and Redis side by side): newest first, a page of `limit`
and whether more follow, whatever expired between them; a runner's end mark, saying how it ends
its batch."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import BatchRecords, FileQuotaError, ending_mark, marked_ending
from router_service.clock import ManualClock
from router_service.config import BatchesConfig, FilesConfig, ResponsesConfig
from router_service.responses import CANCELLED, DONE, StoredResponses
from router_service.state import MemoryStateStore, StateStore
from tests.router_service.state.stores import MakeStore

CLIENT = "app"


def _records(
    store: StateStore,
    clock: ManualClock,
    files: FilesConfig,
    responses: ResponsesConfig | None = None,
) -> BatchRecords:
    responses = responses or ResponsesConfig()
    stored = StoredResponses(store, clock, responses, max_load_bytes=1 << 20)
    return BatchRecords(store, clock, files, BatchesConfig(), responses, stored)


async def test_a_page_says_more_follow_past_a_batch_that_expired_before_older_ones(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    records = _records(make_store(clock), clock, FilesConfig(ttl_s=100))
    older = bpb.Batch(id="batch_older", status="in_progress", created_at=0)
    await records.begin(CLIENT, older)
    # Failed as it was made: written once, so it expires first.
    await records.begin(CLIENT, bpb.Batch(id="batch_failed", status="failed", created_at=0))
    clock.advance(50)
    await records.write(CLIENT, older)  # still running: kept 100 s from now
    clock.advance(10)
    await records.begin(CLIENT, bpb.Batch(id="batch_newest", status="failed", created_at=60))
    clock.advance(60)  # the failed one is gone; the older and the newest are not
    first = await records.listed(CLIENT, bpb.ListBatchesRequest(limit=1))
    assert [b.id for b in first.batches] == ["batch_newest"]
    assert first.has_more  # the older one follows
    rest = await records.listed(CLIENT, bpb.ListBatchesRequest(limit=1, after="batch_newest"))
    assert [b.id for b in rest.batches] == ["batch_older"]
    assert not rest.has_more


async def test_a_batch_past_max_files_is_told_to_retry_when_the_period_ends(
    make_store: MakeStore,
) -> None:
    clock = ManualClock(start=1_000_000.0 - 10)  # 10 s before a 1000-second period ends
    records = _records(make_store(clock), clock, FilesConfig(ttl_s=1000, max_files=1))
    await records.begin(CLIENT, bpb.Batch(id="batch_one", status="failed"))
    with pytest.raises(FileQuotaError) as refused:
        await records.begin(CLIENT, bpb.Batch(id="batch_two", status="failed"))
    assert refused.value.retry_after_s == 10  # not the whole period


class CountingReads(MemoryStateStore):
    """Memory state counting its reads of documents."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reads = 0

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        self.reads += 1
        return await super().get_documents(names)


async def test_a_page_reads_past_many_expired_batches_in_a_few_reads() -> None:
    clock = ManualClock()
    store = CountingReads(clock)
    records = _records(store, clock, FilesConfig(ttl_s=100, max_files=1000))
    for n in range(500):  # failed as made: written once, gone first
        await records.begin(CLIENT, bpb.Batch(id=f"batch_gone{n:03}", status="failed"))
    clock.advance(50)
    for name in ("batch_live1", "batch_live2"):
        await records.begin(CLIENT, bpb.Batch(id=name, status="failed", created_at=50))
    clock.advance(60)  # the 500 are gone, the two newest not
    store.reads = 0
    page = await records.listed(CLIENT, bpb.ListBatchesRequest(limit=2))
    assert [b.id for b in page.batches] == ["batch_live2", "batch_live1"]
    assert not page.has_more
    assert store.reads <= 10  # not one read a gone id


def test_a_runners_end_mark_says_how_it_ends_the_batch() -> None:
    output_not_kept = ("output_not_kept", "The batch's output could not be kept.")
    for how, fault in [("done", None), ("expired", None), ("fault", output_not_kept)]:
        assert marked_ending(ending_mark(how, fault)) == (how, fault)
    # No runner began to end it: no mark, a cancel's; or its runner's does not say how (a
    # replica of an earlier version wrote it), or the mark is not ours.
    for mark in [None, CANCELLED, DONE, b"done:[", b'done:{"how": 1}', b"done:[1, [2]]"]:
        assert marked_ending(mark) is None


async def test_an_end_mark_lives_as_long_as_its_batch(make_store: MakeStore) -> None:
    """Kept `responses.store_ttl_s` (an hour by default, a batch's record 30 days), the mark
    of a runner that stopped as it ended its batch was gone before the batch: a replica taking
    the batch over found it running, no mark, and ran its lines again."""
    clock = ManualClock()
    responses = ResponsesConfig(store_ttl_s=100)
    records = _records(make_store(clock), clock, FilesConfig(ttl_s=1000), responses)
    batch = bpb.Batch(id="batch_ending", status="in_progress", created_at=0)
    await records.begin(CLIENT, batch)
    mark = ending_mark("done", None)
    assert await records.marks.end(CLIENT, batch.id, mark) == mark

    clock.advance(999)  # past store_ttl_s; the batch is still there

    assert (await records.get(CLIENT, batch.id)).id == batch.id
    (found,) = await records.marks.marks([(CLIENT, batch.id)])
    assert marked_ending(found) == ("done", None)  # a take-over ends it, running no line
