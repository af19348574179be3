"""A file or a batch refused after it took its place in its client's index (the store lost as
the batch is kept, no room for the file) takes none of its client's `files.max_files`: the
next one is let in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import AppendResult, MemoryStateStore, PutResult
from tests.conftest import StartRouter, base_config
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.helpers import eventually
from tests.router_service.server.test_batch_ends import FailsOnce


async def test_a_batch_refused_as_it_is_kept_takes_no_place_of_max_files(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = FailsOnce(clock, lambda name, data: name.startswith("batch:"))
    config = base_config(fake.base_url, files={"max_files": 1})
    router = await start_router(config, clock=clock, store=store)
    upload = bpb.UploadFileRequest(
        filename="in.jsonl", purpose="batch", content=jsonl(chat_line("a"))
    )
    async with RouterClient(router.server.address) as calls:
        kept = (await calls.upload_file(upload, timeout=10)).file
        create = bpb.CreateBatchRequest(
            input_file_id=kept.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        with pytest.raises(RouterError) as refused:
            await calls.create_batch(create, timeout=10)
        assert store.failed and refused.value.http_status == 503
        made = (await calls.create_batch(create, timeout=10)).batch
        assert await router.server.batch_jobs.settle(10) == 0
        listed = await calls.list_batches(bpb.ListBatchesRequest(), timeout=10)
    assert [b.id for b in listed.batches] == [made.id]


async def test_an_upload_refused_for_no_room_takes_no_place_of_max_files(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = MemoryStateStore(clock, document_bytes=4096)  # no room for 5000 bytes
    config = base_config(fake.base_url, files={"max_files": 1})
    router = await start_router(config, clock=clock, store=store)
    big = bpb.UploadFileRequest(filename="big", purpose="user_data", content=b"x" * 5000)
    small = bpb.UploadFileRequest(filename="small", purpose="user_data", content=b"x")
    async with RouterClient(router.server.address) as calls:
        with pytest.raises(RouterError) as refused:
            await calls.upload_file(big, timeout=10)
        assert refused.value.http_status == 413 and "no room" in str(refused.value)
        kept = (await calls.upload_file(small, timeout=10)).file
        listed = await calls.list_files(bpb.ListFilesRequest(), timeout=10)
    assert [f.id for f in listed.files] == [kept.id]


class HoldsTheBatch(MemoryStateStore):
    """Memory state whose first write of a batch's record waits until it is cut (its call
    cancelled): `holding` once it waits."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.holding = asyncio.Event()

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if name.startswith("batch:") and not self.holding.is_set():
            self.holding.set()
            await asyncio.Event().wait()  # until cancelled
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_a_batch_whose_create_is_cancelled_as_it_is_kept_is_undone(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Its caller never hears its id: it takes no place of max_files, and never runs."""
    clock = ManualClock(1_700_000_000.0)
    store = HoldsTheBatch(clock)
    config = base_config(fake.base_url, files={"max_files": 1})
    router = await start_router(config, clock=clock, store=store)
    content = jsonl(chat_line("a"))
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    call = router.stub.CreateBatch(create)
    await store.holding.wait()
    call.cancel()
    made: list[bpb.Batch] = []

    async def created() -> bool:  # once the cancelled create is undone, its place is free
        try:
            made.append((await router.stub.CreateBatch(create)).batch)
        except grpc.aio.AioRpcError as refused:
            if refused.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            return False
        return True

    await eventually(created, what="a batch created in the cancelled one's place")
    jobs = router.server.batch_jobs
    assert await jobs.settle(10) == 0
    assert await jobs.adopt(router.runtime) == 0  # the cancelled one is not taken over
    assert await jobs.settle(10) == 0
    listed = await router.stub.ListBatches(bpb.ListBatchesRequest())
    assert [b.id for b in listed.batches] == [b.id for b in made]
    assert fake.state.count(path="/chat/completions") == 1  # the new batch's line only


class HoldsAfterTheIndex(MemoryStateStore):
    """Memory state whose first write of an index named `held_index…` is made, and then its answer
    waits until the call is cut (cancelled): a Redis append whose script ran, its caller gone
    before the answer came. `holding` once it waits."""

    def __init__(self, clock: ManualClock, held_index: str) -> None:
        super().__init__(clock)
        self.held_index = held_index
        self.holding = asyncio.Event()

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        added = await super().append_document(name, data, max_bytes=max_bytes)
        await self._answer_held(name, added is AppendResult.APPENDED)
        return added

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        await self._answer_held(name, kept is PutResult.KEPT)
        return kept

    async def _answer_held(self, name: str, written: bool) -> None:
        if written and name.startswith(self.held_index) and not self.holding.is_set():
            self.holding.set()
            await asyncio.Event().wait()  # until cancelled


async def made_once_free(make: Callable[[], Awaitable[object]]) -> None:
    """`make` again until its client's one place (files.max_files: 1) is free for it."""

    async def made() -> bool:
        try:
            await make()
        except grpc.aio.AioRpcError as refused:
            if refused.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            return False
        return True

    await eventually(made, what="one made in the cancelled one's place")


async def test_an_upload_cancelled_as_its_id_is_indexed_takes_no_place_of_max_files(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = HoldsAfterTheIndex(clock, "file-index:")
    config = base_config(fake.base_url, files={"max_files": 1})
    router = await start_router(config, clock=clock, store=store)
    upload = bpb.UploadFileRequest(filename="a.txt", purpose="user_data", content=b"a")
    call = router.stub.UploadFile(upload)
    await store.holding.wait()
    call.cancel()
    await made_once_free(lambda: router.stub.UploadFile(upload))
    listed = await router.stub.ListFiles(bpb.ListFilesRequest())
    assert [f.filename for f in listed.files] == ["a.txt"]  # the second one, alone


async def test_a_batch_cancelled_as_its_id_is_indexed_takes_no_place_of_max_files(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = HoldsAfterTheIndex(clock, "batch-index:")
    config = base_config(fake.base_url, files={"max_files": 1})
    router = await start_router(config, clock=clock, store=store)
    upload = bpb.UploadFileRequest(
        filename="in.jsonl", purpose="batch", content=jsonl(chat_line("a"))
    )
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    call = router.stub.CreateBatch(create)
    await store.holding.wait()
    call.cancel()
    await made_once_free(lambda: router.stub.CreateBatch(create))
    assert await router.server.batch_jobs.settle(10) == 0
    listed = await router.stub.ListBatches(bpb.ListBatchesRequest())
    assert len(listed.batches) == 1 and fake.state.count(path="/chat/completions") == 1
