"""The upload RPCs through the Python clients, on a real router over a real gRPC channel: an
upload made, given parts and completed into a file; each typed refusal (its reason and the
HTTP status the edge maps it to)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from clients import RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import uploads_pb2 as upb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config


def create(size: int) -> upb.CreateUploadRequest:
    return upb.CreateUploadRequest(
        filename="in.txt", purpose="user_data", bytes=size, mime_type="text/plain"
    )


async def test_the_python_clients_upload_a_file_in_parts(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url, files={"max_file_bytes": 1000}))
    async with RouterClient(router.server.address) as calls:
        upload = (await calls.create_upload(create(6), timeout=10)).upload
        assert upload.status == "pending" and upload.id.startswith("upload_")
        parts = [
            (
                await calls.add_upload_part(upb.AddUploadPartRequest(upload_id=upload.id, data=d))
            ).part
            for d in (b"abc", b"def")
        ]
        complete = upb.CompleteUploadRequest(
            upload_id=upload.id,
            part_ids=[p.id for p in parts],
            md5=hashlib.md5(b"abcdef").hexdigest(),
        )
        done = (await calls.complete_upload(complete, timeout=10)).upload
        assert done.status == "completed" and done.file.bytes == 6
        content = await calls.get_file_content(bpb.GetFileContentRequest(id=done.file.id))
        assert content.content == b"abcdef"
        with pytest.raises(RouterError) as ended:
            await calls.cancel_upload(upb.CancelUploadRequest(upload_id=upload.id), timeout=10)
        assert ended.value.reason == "UPLOAD_NOT_PENDING" and ended.value.http_status == 400
    with SyncRouterClient(router.server.address) as sync:
        with pytest.raises(RouterError) as unknown:
            cancel = upb.CancelUploadRequest(upload_id="upload_nope")
            await asyncio.to_thread(sync.cancel_upload, cancel, timeout=10)
        assert unknown.value.reason == "UPLOAD_NOT_FOUND" and unknown.value.http_status == 404
        with pytest.raises(RouterError) as too_large:
            await asyncio.to_thread(sync.create_upload, create(1001), timeout=10)
        assert too_large.value.reason == "FILE_TOO_LARGE" and too_large.value.http_status == 413
        cancelled = await asyncio.to_thread(sync.create_upload, create(3), timeout=10)
        cancel = upb.CancelUploadRequest(upload_id=cancelled.upload.id)
        assert (await asyncio.to_thread(sync.cancel_upload, cancel)).upload.status == "cancelled"


async def test_a_file_with_no_filename_is_refused_whole_or_in_parts(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The edge's form refuses a file without a filename: gRPC callers and uploads in parts
    are refused alike, never kept as a file named nothing."""
    router = await start_router(base_config(fake.base_url))
    async with RouterClient(router.server.address) as calls:
        nameless = upb.CreateUploadRequest(
            filename="", purpose="user_data", bytes=1, mime_type="text/plain"
        )
        with pytest.raises(RouterError) as in_parts:
            await calls.create_upload(nameless, timeout=10)
        whole = bpb.UploadFileRequest(filename="", purpose="user_data", content=b"x")
        with pytest.raises(RouterError) as at_once:
            await calls.upload_file(whole, timeout=10)
        for refused in (in_parts.value, at_once.value):
            assert refused.http_status == 400 and "filename" in str(refused), refused
        listed = await calls.list_files(bpb.ListFilesRequest(), timeout=10)
        assert list(listed.files) == []
