"""A file on a memory store at its budget (`state.memory_document_bytes`) is whole or not
there: the store drops documents to make room, and a file is two (its content, its object)."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config

pytestmark = pytest.mark.timeout(60)


def _upload(name: str, size: int) -> bpb.UploadFileRequest:
    return bpb.UploadFileRequest(filename=name, purpose="user_data", content=b"x" * size)


async def _whole(router: RouterHandle) -> dict[str, bool]:
    """Each listed file's id, and whether it reads with its content."""
    listed = await router.stub.ListFiles(bpb.ListFilesRequest(), timeout=10)
    whole = {}
    for file in listed.files:
        read = router.stub.GetFileContent(bpb.GetFileContentRequest(id=file.id), timeout=10)
        try:
            whole[file.id] = len((await read).content) == file.bytes
        except grpc.aio.AioRpcError:
            whole[file.id] = False  # (NOT_FOUND)
        assert await read.code() in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND)
    return whole


async def test_a_file_whose_content_the_store_dropped_for_room_is_not_listed(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A file's content (`file-data:<client>`) and its object (`file:<client>`) were counted
    # as two owners: the store dropped the client's oldest content to make room, as the one
    # holding the most, and kept its object, listed and retrieved, its content a 404.
    config = base_config(fake.base_url, state={"memory_document_bytes": 2400})
    router = await start_router(config)
    first = await router.stub.UploadFile(_upload("a.txt", 1000), timeout=10)
    second = await router.stub.UploadFile(_upload("b.txt", 1000), timeout=10)
    whole = await _whole(router)
    assert whole == {second.file.id: True}, whole
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await router.stub.GetFile(bpb.GetFileRequest(id=first.file.id), timeout=10)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_upload_whose_object_pushes_out_its_own_content_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Room for its content alone: its object's write dropped that content, and the upload was
    # answered as kept, a file listed whose content was a 404.
    config = base_config(fake.base_url, state={"memory_document_bytes": 1200})
    router = await start_router(config)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.UploadFile(_upload("a.txt", 1000), timeout=10)
    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE, refused.value
    assert await _whole(router) == {}


async def test_a_file_kept_whole_stays_listed_when_the_store_makes_room(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Deleted files stay in their client's index until its period ends, so a client that
    # uploads and deletes in a loop has an index holding more than its files do: the store,
    # making room for the next upload, dropped that index (its owner holding the most) and
    # every file kept whole, that one too, was no longer listed.
    config = base_config(fake.base_url, state={"memory_document_bytes": 3000})
    router = await start_router(config)
    for i in range(60):
        done = await router.stub.UploadFile(_upload(f"{i}.txt", 1), timeout=10)
        await router.stub.DeleteFile(bpb.DeleteFileRequest(id=done.file.id), timeout=10)
    kept = await router.stub.UploadFile(_upload("kept.txt", 10), timeout=10)
    last = await router.stub.UploadFile(_upload("last.txt", 650), timeout=10)
    whole = await _whole(router)
    assert whole.get(last.file.id) is True, whole  # the room was made of other documents
    for file in (kept, last):  # each whole (its content read) is listed, whole
        read = router.stub.GetFileContent(bpb.GetFileContentRequest(id=file.file.id))
        if await read.code() == grpc.StatusCode.OK:
            assert whole.get(file.file.id) is True, (file.file.filename, whole)
