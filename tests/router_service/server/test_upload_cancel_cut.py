"""A cancel of an upload in parts whose caller leaves (its deadline, a dropped connection) as the
router writes the upload's end: the upload is cancelled, and what it held is given back with it
(its slot among its client's pending uploads, its parts' count against `files.client_bytes`),
not held until the hour it would have lived is over. The caller's retry is told it is cancelled
and gives nothing back; the client's next upload must not be a 429 meanwhile. The store holds
the end's write until the test lets it go, so the cancellation lands while it is in flight."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import uploads_pb2 as upb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.router_service.server.test_file_upload_cut import HeldDocuments, cut_short


async def test_a_cancel_cut_short_gives_back_its_uploads_slot_and_parts(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    store = HeldDocuments("upload-end:")
    files = {"max_pending_uploads": 1, "max_file_bytes": 1000, "client_bytes": 1600}
    router = await start_router(base_config(fake.base_url, files=files), store=store)
    asked = upb.CreateUploadRequest(
        filename="a.txt", purpose="user_data", bytes=900, mime_type="text/plain"
    )
    upload = (await router.stub.CreateUpload(asked, timeout=10)).upload
    part = upb.AddUploadPartRequest(upload_id=upload.id, data=b"p" * 900)
    await router.stub.AddUploadPart(part, timeout=10)
    call = router.stub.CancelUpload(upb.CancelUploadRequest(upload_id=upload.id), timeout=30)
    await store.started.wait()  # its end is being written
    await cut_short(router, call)
    store.go.set()

    with pytest.raises(grpc.aio.AioRpcError) as again:  # the caller's retry: cancelled
        await router.stub.CancelUpload(upb.CancelUploadRequest(upload_id=upload.id), timeout=10)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION, again.value.details()
    # Its slot is free: the client's next upload is made, not refused (RESOURCE_EXHAUSTED).
    await router.stub.CreateUpload(asked, timeout=10)
    # Its parts' 900 bytes are given back: a file of 1000 (its entry 512) fits in 1600.
    whole = bpb.UploadFileRequest(filename="b.txt", purpose="user_data", content=b"b" * 1000)
    await router.stub.UploadFile(whole, timeout=10)
