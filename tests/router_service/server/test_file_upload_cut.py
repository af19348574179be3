"""An upload whose caller leaves (its deadline, a dropped connection) while the router is
writing it: the file is written whole and counted against its client's `files.client_bytes`,
never left half-kept. Its content was kept and its object not (or kept and not counted): bytes
in the store for `files.ttl_s` that no listing showed and no quota counted, as many times as
the caller cut uploads short. The store holds the file's object write until the test lets it
go, so the cancellation lands while it is in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore, PutResult
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually


class HeldDocuments(MemoryStateStore):
    """Memory state whose writes of documents named `prefix…` (`file:` a file's object, after
    its content; `upload-end:` an upload's end) wait until `go` is set (a round trip to a
    shared store that takes its time), and that says when one started."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if name.startswith(self.prefix):
            self.started.set()
            await self.go.wait()
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_an_upload_cut_short_is_kept_whole_and_counted(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    store = HeldDocuments("file:")
    config = base_config(fake.base_url, files={"max_file_bytes": 1000, "client_bytes": 2000})
    router = await start_router(config, store=store)
    cut = bpb.UploadFileRequest(filename="cut.txt", purpose="user_data", content=b"c" * 900)
    call = router.stub.UploadFile(cut, timeout=30)
    await store.started.wait()  # its content is kept; its object is being written
    await cut_short(router, call)
    store.go.set()

    kept: list[bpb.StoredFile] = []

    async def listed() -> bool:
        found = await router.stub.ListFiles(bpb.ListFilesRequest(), timeout=10)
        kept[:] = found.files
        return [f.filename for f in kept] == ["cut.txt"]

    await eventually(listed, what="the upload cut short kept whole")
    asked = bpb.GetFileContentRequest(id=kept[0].id)
    content = await router.stub.GetFileContent(asked, timeout=10)
    assert content.content == cut.content
    # Its 900 bytes (and its entry) are counted: a second one of 900 passes the 2000.
    second = bpb.UploadFileRequest(filename="b.txt", purpose="user_data", content=b"b" * 900)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.UploadFile(second, timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def cut_short(router: RouterHandle, call: grpc.aio.UnaryUnaryCall[Any, Any]) -> None:
    """Cancel `call`, then wait until the router took the cancellation: no handler of it runs
    on uncancelled (it lands there some loop turns after the client's side: a write let go
    before that was not cut short at all)."""
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    handlers = router.server._auth.calls

    async def taken() -> bool:
        return all(task.cancelling() for task in handlers._tasks)

    await eventually(taken, what="the router's handler cancelled")
