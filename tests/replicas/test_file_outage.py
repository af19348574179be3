"""A file is the shared store's or nothing, as a batch is: an upload that a replica could only
keep on its own local state (Redis lost as it wrote it) is refused with a 503 to try again, and
nothing of it is kept there. It was answered 200 with a file that only that replica served: a
batch made over it on another replica was a 404 `file_not_found`, then and once Redis was back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import openai
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.clock import ManualClock
from router_service.state import AppendResult, PutResult, ResilientStateStore, answered_locally
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.helpers import eventually
from tests.replicas.harness import refused_for_the_outage, sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_outage import Configs, configs, started_on
from tests.router_service.server.test_file_upload_cut import cut_short

__all__ = ["configs"]  # the fixture, used here


class CutsAfterTheFileIndex(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts (Redis lost, for real: the store falls
    back to local state) once a new file's id is in its client's index of files."""

    proxy: RedisProxy | None = None

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        added = await super().append_document(name, data, max_bytes=max_bytes)
        if added is AppendResult.APPENDED:
            await self._cut_after(name)
        return added

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        if kept is PutResult.KEPT:  # the client's first file: its index made with its id
            await self._cut_after(name)
        return kept

    async def _cut_after(self, name: str) -> None:
        if self.proxy is not None and name.startswith("file-index:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()


async def test_a_file_uploaded_as_redis_is_lost_is_refused_not_kept_where_nobody_reads_it(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheFileIndex, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    content = jsonl(chat_line("l1", "a"))
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy
        with pytest.raises(openai.InternalServerError) as refused:
            await first.files.create(file=("in.jsonl", content), purpose="batch")
        assert refused.value.status_code == 503
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "state_unavailable", refused.value.body
        with pytest.raises(openai.InternalServerError) as during:  # (its index: on Redis)
            await first.files.create(file=("in.jsonl", content), purpose="batch")
        assert during.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call
        # Nothing of it on replica one's local state either (found there when Redis lacks it).
        assert [f.id async for f in first.files.list()] == []
        again = await first.files.create(file=("in.jsonl", content), purpose="batch")
        assert (await second.files.retrieve(again.id)).id == again.id


class HoldsTheFileObject(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts just before a new file's content is
    written (its index made on Redis: lost then, whatever the replica's other calls see of the
    cut, the upload is past the index's check), so that content goes to local state; its
    writes of a file's object (`file:…`, after its content) wait until `go` is set, saying
    when one started."""

    proxy: RedisProxy | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if self.proxy is not None and name.startswith("file-data:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
        if name.startswith("file:"):
            self.started.set()
            await self.go.wait()
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_an_upload_left_by_its_caller_as_redis_is_lost_is_not_kept_locally(
    configs: Configs, start_router: StartRouter
) -> None:
    """Its caller gone, the upload is still written whole (it was begun), and then forgotten
    as one answered: it was kept on replica one's local state alone, listed there only."""
    redis_proxy, through, _ = configs
    clock = ManualClock(time.time())
    one, store = await started_on(HoldsTheFileObject, through, clock, start_router)
    store.proxy = redis_proxy
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=b"{}\n")
    call = one.stub.UploadFile(upload, timeout=30)
    await store.started.wait()  # its index on Redis, Redis lost, its content on local state
    await cut_short(one, call)
    store.go.set()
    assert await one.server._auth.calls.settle(10) == 0
    await redis_proxy.restore()
    listed: list[bpb.StoredFile] = []

    async def listed_from_redis() -> bool:
        """A listing answered by Redis (one on local state, or the probe of Redis made by
        another call first, is asked again): the file is on neither."""
        store.retry_shared()
        before = store.outage_counts()
        try:
            found = await one.stub.ListFiles(bpb.ListFilesRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:  # an outage's 503 only: asked again
                raise
            return False
        listed[:] = found.files
        return not answered_locally(store, before)

    await eventually(listed_from_redis, what="a listing answered by Redis")
    assert listed == []


class LostAfterTheFileObject(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts once a new file's object (written after
    its content) is on Redis; another call on the replica then finds Redis lost, before the
    upload is answered."""

    proxy: RedisProxy | None = None

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        if self.proxy is not None and name.startswith("file:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
            await self.get_documents(["another-call"])  # another request's: Redis is lost
        return kept


async def test_an_upload_refused_as_redis_is_lost_is_deleted_there_once_it_is_back(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Refused with a 503 (whether the replica kept it on Redis is not known to it), the file
    is deleted from Redis when the replica reaches it again. It was left there whole: listed
    and read on every replica, a file its caller was told was not kept (and uploaded again)."""
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(LostAfterTheFileObject, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy
        with pytest.raises(openai.InternalServerError) as refused:
            await first.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
        assert refused.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call, its queued deletes first
        assert [f.id async for f in first.files.list()] == []
        assert [f.id async for f in second.files.list()] == []


class BlipsAtTheFileContent(ResilientStateStore):
    """A replica's store through `proxy`, which is cut for the write of a new file's content
    (kept on local state) and back for the rest of the upload (on Redis again)."""

    proxy: RedisProxy | None = None

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        proxy = self.proxy if name.startswith("file-data:") else None
        if proxy is not None:
            self.proxy = None
            await proxy.cut()
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        if proxy is not None:
            await proxy.restore()
            self.retry_shared()
        return kept


async def test_an_upload_refused_for_an_outage_counts_no_bytes(
    configs: Configs, start_router: StartRouter
) -> None:
    """The refused upload's bytes are not charged to its client's `files.client_bytes` (on
    Redis, back for its charge): one as large is taken next."""
    redis_proxy, through, _ = configs
    through["files"] = {"max_file_bytes": 1000, "client_bytes": 2000}
    one, store = await started_on(
        BlipsAtTheFileContent, through, ManualClock(time.time()), start_router
    )
    store.proxy = redis_proxy
    upload = bpb.UploadFileRequest(filename="a.txt", purpose="user_data", content=b"a" * 900)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await one.stub.UploadFile(upload, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    again = await one.stub.UploadFile(upload, timeout=10)
    listed = await one.stub.ListFiles(bpb.ListFilesRequest(), timeout=10)
    assert [f.id for f in listed.files] == [again.file.id]


class CutsAfterTheContent(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts once a new file's content is on Redis:
    its object goes to the local state, which has no room (`memory_document_bytes: 0`)."""

    proxy: RedisProxy | None = None
    content = ""

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        if self.proxy is not None and name.startswith("file-data:"):
            proxy, self.proxy, self.content = self.proxy, None, name
            await proxy.cut()
        return kept


async def test_an_upload_refused_for_no_room_as_redis_is_lost_leaves_no_content_on_redis(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its content's delete, refused during the outage (not kept locally), was dropped: the
    content stayed on Redis for `files.ttl_s`, counted by no quota, and the caller heard a 503
    of the delete instead of the refusal's."""
    redis_proxy, through, _ = configs
    through["state"]["memory_document_bytes"] = 0
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheContent, through, clock, start_router)
    async with sdks_on(start_edge, one) as (first,):
        store.proxy = redis_proxy
        with pytest.raises(openai.APIStatusError) as refused:
            await first.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "no_room", refused.value.body
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call, its queued writes replayed
        assert [f.id async for f in first.files.list()] == []
        assert await store.shared.get_documents([store.content]) == [None]


async def test_reading_files_during_an_outage_is_a_503_not_a_404_or_an_empty_list(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A file on Redis, read on a replica that lost it: the read falls back to local state,
    where it is not. Retrieve and content said 404 `file_not_found` and list said there are
    none (a caller's mistake, or files gone), while they are on Redis all along: unknown now,
    a 503 `state_unavailable` to try again, as a batch made over the file is."""
    redis_proxy, through, _ = configs
    one = await start_router(through, clock=ManualClock(time.time()))
    async with sdks_on(start_edge, one) as (first,):
        kept = await first.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
        await redis_proxy.cut()
        await refused_for_the_outage(
            lambda: first.files.retrieve(kept.id),
            lambda: first.files.content(kept.id),
            lambda: first.files.list(),
        )
        await redis_proxy.restore()
        one.runtime.store.retry_shared()
        assert (await first.files.retrieve(kept.id)).id == kept.id
        assert (await first.files.content(kept.id)).content == b"{}\n"
        assert [f.id async for f in first.files.list()] == [kept.id]
