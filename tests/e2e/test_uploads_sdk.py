"""The Uploads API end to end: the official `openai` SDK's `client.uploads` (create, parts,
complete, cancel, `upload_file_chunked`) → the edge → the router, which keeps the parts in its
state store and completes them into a file as `client.files.create` keeps one."""

from __future__ import annotations

import hashlib
import time

import openai
import pytest

from router_service.clock import ManualClock
from router_service.state import MemoryStateStore
from tests.e2e.test_batches_sdk import Open, chat_line, counts, jsonl, open_batches

__all__ = ["open_batches"]  # the fixture, used here

HOUR_S = 3600


async def test_parts_completed_in_order_are_a_file_as_an_upload_whole_is(
    open_batches: Open,
) -> None:
    router, sdk, _ = await open_batches()
    content = jsonl(chat_line("one"), chat_line("two"))
    head, tail = content[:20], content[20:]
    upload = await sdk.uploads.create(
        bytes=len(content), filename="in.jsonl", mime_type="text/jsonl", purpose="batch"
    )
    assert upload.id.startswith("upload_") and upload.object == "upload"
    assert (upload.status, upload.bytes, upload.filename, upload.purpose) == (
        "pending",
        len(content),
        "in.jsonl",
        "batch",
    )
    assert upload.expires_at == upload.created_at + HOUR_S and upload.file is None
    second = await sdk.uploads.parts.create(upload.id, data=tail)
    first = await sdk.uploads.parts.create(upload.id, data=head)
    assert first.id.startswith("part_") and first.object == "upload.part"
    assert first.upload_id == upload.id
    done = await sdk.uploads.complete(
        upload.id, part_ids=[first.id, second.id], md5=hashlib.md5(content).hexdigest()
    )
    assert done.status == "completed" and done.file is not None
    file = done.file
    assert (file.object, file.bytes, file.filename, file.purpose) == (
        "file",
        len(content),
        "in.jsonl",
        "batch",
    )
    assert (await sdk.files.content(file.id)).content == content
    assert (await sdk.files.retrieve(file.id)).id == file.id
    assert [f.id async for f in sdk.files.list()] == [file.id]
    batch = await sdk.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert await router.server.batch_jobs.settle(10) == 0
    assert counts(await sdk.batches.retrieve(batch.id)) == (2, 2, 0)


async def test_the_sdks_chunked_upload_sends_parts_and_completes_them(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches()
    content = bytes(range(256)) * 40
    done = await sdk.uploads.upload_file_chunked(
        file=content,
        filename="data.bin",
        bytes=len(content),
        mime_type="application/octet-stream",
        purpose="user_data",
        part_size=1000,
    )
    assert done.status == "completed" and done.file is not None
    assert (await sdk.files.content(done.file.id)).content == content


async def test_a_completion_whose_parts_do_not_match_is_a_400_and_the_upload_stays_pending(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches()
    upload = await sdk.uploads.create(
        bytes=10, filename="a.txt", mime_type="text/plain", purpose="user_data"
    )
    part = await sdk.uploads.parts.create(upload.id, data=b"12345")
    with pytest.raises(openai.BadRequestError) as short:
        await sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert short.value.param == "part_ids" and "5 bytes" in short.value.message
    more = await sdk.uploads.parts.create(upload.id, data=b"67890")
    with pytest.raises(openai.BadRequestError) as checksum:
        await sdk.uploads.complete(upload.id, part_ids=[part.id, more.id], md5="0" * 32)
    assert checksum.value.param == "md5"
    with pytest.raises(openai.BadRequestError) as unknown:
        await sdk.uploads.complete(upload.id, part_ids=[part.id, "part_nope"])
    assert unknown.value.param == "part_ids"
    with pytest.raises(openai.BadRequestError) as over:
        await sdk.uploads.parts.create(upload.id, data=b"x")  # past its 10 bytes
    assert over.value.param == "data"
    done = await sdk.uploads.complete(upload.id, part_ids=[more.id, part.id])
    assert done.file is not None
    assert (await sdk.files.content(done.file.id)).content == b"6789012345"


async def test_a_cancelled_or_completed_upload_refuses_parts_completion_and_cancel(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches()
    cancelled = await sdk.uploads.create(
        bytes=3, filename="a.txt", mime_type="text/plain", purpose="user_data"
    )
    await sdk.uploads.parts.create(cancelled.id, data=b"abc")
    assert (await sdk.uploads.cancel(cancelled.id)).status == "cancelled"
    completed = await sdk.uploads.create(
        bytes=3, filename="b.txt", mime_type="text/plain", purpose="user_data"
    )
    part = await sdk.uploads.parts.create(completed.id, data=b"abc")
    await sdk.uploads.complete(completed.id, part_ids=[part.id])
    for upload, status in ((cancelled, "cancelled"), (completed, "completed")):
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.uploads.parts.create(upload.id, data=b"d")
        assert refused.value.code == f"upload_{status}", refused.value.body
        assert f"already {status}" in refused.value.message
        if status == "cancelled":
            with pytest.raises(openai.BadRequestError):
                await sdk.uploads.complete(upload.id, part_ids=[part.id])
        else:  # a completion retried (its answer lost): answered completed again
            done = await sdk.uploads.complete(upload.id, part_ids=[part.id])
            assert done.status == "completed" and done.file is not None
        with pytest.raises(openai.BadRequestError):
            await sdk.uploads.cancel(upload.id)
    assert [f.filename async for f in sdk.files.list()] == ["b.txt"]


async def test_an_upload_is_its_clients_alone_and_an_unknown_one_is_a_404(
    open_batches: Open,
) -> None:
    _, sdk, other = await open_batches()
    upload = await sdk.uploads.create(
        bytes=3, filename="a.txt", mime_type="text/plain", purpose="user_data"
    )
    for upload_id in (upload.id, "upload_unknown"):
        with pytest.raises(openai.NotFoundError) as missing:
            await other.uploads.parts.create(upload_id, data=b"abc")
        assert missing.value.code == "upload_not_found"
        with pytest.raises(openai.NotFoundError):
            await other.uploads.cancel(upload_id)
    part = await sdk.uploads.parts.create(upload.id, data=b"abc")
    with pytest.raises(openai.NotFoundError) as theirs:  # its parts' ids known, even
        await other.uploads.complete(upload.id, part_ids=[part.id])
    assert theirs.value.code == "upload_not_found"
    done = await sdk.uploads.complete(upload.id, part_ids=[part.id])  # still its own, pending
    assert done.file is not None
    with pytest.raises(openai.NotFoundError):
        await other.files.content(done.file.id)


async def test_an_upload_past_max_file_bytes_or_of_another_purpose_is_refused(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches(files={"max_file_bytes": 100})
    with pytest.raises(openai.APIStatusError) as large:
        await sdk.uploads.create(
            bytes=101, filename="a.txt", mime_type="text/plain", purpose="user_data"
        )
    assert large.value.status_code == 413 and large.value.code == "file_too_large"
    with pytest.raises(openai.BadRequestError) as purpose:
        await sdk.uploads.create(
            bytes=10, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
    assert purpose.value.param == "purpose"


async def test_pending_parts_count_against_client_bytes_until_cancelled_or_expired(
    open_batches: Open,
) -> None:
    clock = ManualClock(time.time())
    _, sdk, _ = await open_batches(clock=clock, files={"client_bytes": 2000})
    first = await sdk.uploads.create(
        bytes=1500, filename="a.bin", mime_type="application/octet-stream", purpose="user_data"
    )
    await sdk.uploads.parts.create(first.id, data=b"x" * 1500)
    second = await sdk.uploads.create(
        bytes=1500, filename="b.bin", mime_type="application/octet-stream", purpose="user_data"
    )
    with pytest.raises(openai.RateLimitError) as over:
        await sdk.uploads.parts.create(second.id, data=b"y" * 1000)
    assert over.value.code == "file_quota_exceeded"
    with pytest.raises(openai.RateLimitError):  # a whole upload sees them too
        await sdk.files.create(file=("c.bin", b"z" * 1000), purpose="user_data")
    await sdk.uploads.cancel(first.id)
    kept = await sdk.uploads.parts.create(second.id, data=b"y" * 1000)
    clock.advance(HOUR_S + 1)
    with pytest.raises(openai.BadRequestError) as expired:
        await sdk.uploads.complete(second.id, part_ids=[kept.id])
    assert expired.value.code == "upload_expired"
    with pytest.raises(openai.BadRequestError):
        await sdk.uploads.parts.create(second.id, data=b"y")
    # Its parts given back: the client's whole budget is there for a file again.
    await sdk.files.create(file=("c.bin", b"z" * 1400), purpose="user_data")


async def test_files_list_oldest_first_with_order_asc(open_batches: Open) -> None:
    _, sdk, _ = await open_batches()
    made = [
        (await sdk.files.create(file=(f"{n}.txt", b"x"), purpose="user_data")).id for n in range(3)
    ]
    assert [f.id async for f in sdk.files.list(order="asc")] == made
    assert [f.id async for f in sdk.files.list(order="desc")] == made[::-1]
    page = await sdk.files.list(order="asc", after=made[0], limit=1)
    assert [f.id for f in page.data] == [made[1]] and page.has_more
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.files.list(order="sideways")  # type: ignore[arg-type]
    assert refused.value.param == "order"


async def test_the_file_an_upload_completes_into_expires_as_it_asked(open_batches: Open) -> None:
    _, sdk, _ = await open_batches()
    upload = await sdk.uploads.create(
        bytes=1,
        filename="a.txt",
        mime_type="text/plain",
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 2 * HOUR_S},
    )
    part = await sdk.uploads.parts.create(upload.id, data=b"x")
    done = await sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert done.file is not None and done.file.expires_at == done.file.created_at + 2 * HOUR_S
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.uploads.create(
            bytes=1,
            filename="a.txt",
            mime_type="text/plain",
            purpose="user_data",
            expires_after={"anchor": "created_at", "seconds": 60},
        )
    assert refused.value.param == "expires_after.seconds"


async def test_a_cancelled_uploads_parts_are_deleted(open_batches: Open) -> None:
    router, sdk, _ = await open_batches()
    store = router.runtime.store
    assert isinstance(store, MemoryStateStore)
    upload = await sdk.uploads.create(
        bytes=5000, filename="a.bin", mime_type="application/octet-stream", purpose="user_data"
    )
    before = store.documents.size_bytes
    await sdk.uploads.parts.create(upload.id, data=b"x" * 2500)
    await sdk.uploads.parts.create(upload.id, data=b"y" * 2500)
    assert store.documents.size_bytes >= before + 5000
    await sdk.uploads.cancel(upload.id)
    assert store.documents.size_bytes < before + 1000  # the parts gone, not left to expire


async def test_a_clients_parts_across_uploads_make_room_of_its_own_not_of_anothers_files(
    open_batches: Open,
) -> None:
    # The memory store drops the documents of the owner holding the most bytes for room: a
    # client's parts are all its own, however many uploads they are spread over.
    _, sdk, other = await open_batches(state={"memory_document_bytes": 20_000})
    theirs = await other.files.create(file=("b.bin", b"b" * 6000), purpose="user_data")
    for n in range(4):
        upload = await sdk.uploads.create(
            bytes=5000, filename=f"{n}.bin", mime_type="text/plain", purpose="user_data"
        )
        await sdk.uploads.parts.create(upload.id, data=b"a" * 5000)
    assert (await other.files.content(theirs.id)).content == b"b" * 6000


@pytest.mark.parametrize(
    ("purpose", "mime_type"),
    [
        ("batch", "text/plain"),
        ("batch", "image/png"),
        ("batch", "application/octet-stream"),
        ("user_data", "not a mime type"),
        ("user_data", "text/"),
    ],
)
async def test_an_upload_whose_mime_type_its_purpose_does_not_take_is_refused(
    open_batches: Open, purpose: str, mime_type: str
) -> None:
    _, sdk, _ = await open_batches()
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.uploads.create(
            bytes=10,
            filename="in.jsonl",
            mime_type=mime_type,
            purpose=purpose,  # type: ignore[arg-type]
        )
    assert refused.value.param == "mime_type", refused.value.body
    assert repr(mime_type) in refused.value.message and purpose in refused.value.message
    assert [f async for f in sdk.files.list()] == []


@pytest.mark.parametrize(
    "mime_type",
    [
        "text/jsonl",
        "application/jsonl",
        "application/x-ndjson",
        "application/json",
        "Application/JSONL; charset=utf-8",
    ],
)
async def test_a_batch_upload_takes_json_lines_mime_types(
    open_batches: Open, mime_type: str
) -> None:
    _, sdk, _ = await open_batches()
    content = jsonl(chat_line("one"))
    done = await sdk.uploads.upload_file_chunked(
        file=content, filename="in.jsonl", bytes=len(content), mime_type=mime_type, purpose="batch"
    )
    assert done.file is not None
    assert (done.file.purpose, done.file.filename, done.file.bytes) == (
        "batch",
        "in.jsonl",
        len(content),
    )


async def test_a_clients_pending_uploads_are_bounded_until_one_ends(open_batches: Open) -> None:
    clock = ManualClock(time.time())
    _, sdk, other = await open_batches(clock=clock, files={"max_pending_uploads": 2})

    async def made(client: openai.AsyncOpenAI = sdk) -> str:
        upload = await client.uploads.create(
            bytes=1, filename="a.txt", mime_type="text/plain", purpose="user_data"
        )
        return upload.id

    first, second = await made(), await made()
    for _ in range(2):  # refused ones hold nothing
        with pytest.raises(openai.RateLimitError) as over:
            await made()
        assert over.value.code == "upload_limit_exceeded", over.value.body
        assert "files.max_pending_uploads" in over.value.message
    await made(other)  # another client's are its own
    await sdk.uploads.cancel(first)
    third = await made()
    part = await sdk.uploads.parts.create(second, data=b"x")
    await sdk.uploads.complete(second, part_ids=[part.id])
    await sdk.uploads.complete(second, part_ids=[part.id])  # a retry frees nothing twice
    await made()
    with pytest.raises(openai.RateLimitError):
        await made()
    clock.advance(HOUR_S + 1)  # expired: their slots free
    with pytest.raises(openai.BadRequestError) as expired:
        await sdk.uploads.cancel(third)
    assert expired.value.code == "upload_expired"
    await made()
    await made()


async def test_an_upload_declaring_a_huge_mime_type_is_refused_not_kept(
    open_batches: Open,
) -> None:
    """An upload's object is kept for two hours: a megabyte `mime_type` would be a megabyte of
    the state store an upload (a MIME type's type and subtype are 127 characters at most)."""
    router, sdk, _ = await open_batches()
    store = router.runtime.store
    assert isinstance(store, MemoryStateStore)
    before = store.documents.size_bytes
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.uploads.create(
            bytes=1, filename="a.bin", mime_type="a/" + "b" * 1_000_000, purpose="user_data"
        )
    assert refused.value.param == "mime_type" and len(refused.value.message) < 1000
    assert store.documents.size_bytes < before + 1000
