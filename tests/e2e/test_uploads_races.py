"""The Uploads API under concurrent calls of one client, through the official `openai` SDK:
parts sent at once, completions retried while the first still runs, a completion racing a
cancel. A gate on the state store's reads of the client's pending parts holds each call there
until the others arrive, so each race is run the same way every time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import openai
import pytest

from router_service.state import PutResult, SlotRequest, StateStore
from tests.e2e.test_batches_sdk import Open, open_batches

__all__ = ["gated", "open_batches"]  # the fixture, used here

T = TypeVar("T")
Reader = Callable[[Sequence[str]], Awaitable[list[dict[int, dict[str, float]]]]]


@contextmanager
def gated(stores: Sequence[StateStore], calls: int) -> Iterator[None]:
    """Hold the first `calls` reads of a client's pending parts' counts (on any of `stores`:
    replicas') until all of them arrived (then every read goes on at once; later ones pass)."""
    arrived: list[Sequence[str]] = []
    all_in = asyncio.Event()

    def gate(original: Reader) -> Reader:
        async def read_buckets(names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
            if not all_in.is_set() and any(n.startswith("upload-bytes:") for n in names):
                arrived.append(names)
                if len(arrived) == calls:
                    all_in.set()
                await all_in.wait()
            return await original(names)

        return read_buckets

    for store in stores:
        store.read_buckets = gate(store.read_buckets)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for store in stores:
            del store.read_buckets
    assert all_in.is_set(), f"{len(arrived)} of {calls} reads arrived"


async def test_parts_sent_at_once_never_take_an_upload_past_its_bytes(open_batches: Open) -> None:
    router, sdk, _ = await open_batches()
    upload = await sdk.uploads.create(
        bytes=10, filename="a.txt", mime_type="text/plain", purpose="user_data"
    )
    with gated([router.runtime.store], 2):
        sent = await asyncio.gather(
            sdk.uploads.parts.create(upload.id, data=b"x" * 6),
            sdk.uploads.parts.create(upload.id, data=b"y" * 6),
            return_exceptions=True,
        )
    kept = [part for part in sent if not isinstance(part, BaseException)]
    for refused in (part for part in sent if isinstance(part, BaseException)):
        assert isinstance(refused, openai.BadRequestError) and refused.param == "data"
    assert len(kept) <= 1, "12 bytes of parts kept for a 10-byte upload"
    # What a refused part counted is given back: the rest of the 10 bytes fits.
    rest = await sdk.uploads.parts.create(upload.id, data=b"z" * (10 - 6 * len(kept)))
    done = await sdk.uploads.complete(
        upload.id, part_ids=[*(p.id for p in kept if not isinstance(p, BaseException)), rest.id]
    )
    assert done.status == "completed"


async def test_parts_of_two_uploads_sent_at_once_never_take_a_client_past_its_bytes(
    open_batches: Open,
) -> None:
    router, sdk, _ = await open_batches(files={"client_bytes": 2000})
    uploads = [
        await sdk.uploads.create(
            bytes=1500, filename=f"{n}.bin", mime_type="text/plain", purpose="user_data"
        )
        for n in range(2)
    ]
    with gated([router.runtime.store], 2):
        sent = await asyncio.gather(
            *(sdk.uploads.parts.create(u.id, data=b"x" * 1200) for u in uploads),
            return_exceptions=True,
        )
    kept = [part for part in sent if not isinstance(part, BaseException)]
    for refused in (part for part in sent if isinstance(part, BaseException)):
        assert isinstance(refused, openai.RateLimitError), refused
        assert refused.code == "file_quota_exceeded"
    assert len(kept) <= 1, "2400 bytes of parts held for a client of 2000"
    for upload in uploads:
        await sdk.uploads.cancel(upload.id)
    # Nothing is left counted: the client's whole budget is there for a file again.
    await sdk.files.create(file=("c.bin", b"z" * 1400), purpose="user_data")


async def made_whole(sdk: openai.AsyncOpenAI, size: int) -> tuple[str, str]:
    """A pending upload of `size` bytes with all of them in its one part: (its id, the part's)."""
    upload = await sdk.uploads.create(
        bytes=size, filename="a.bin", mime_type="text/plain", purpose="user_data"
    )
    part = await sdk.uploads.parts.create(upload.id, data=b"x" * size)
    return upload.id, part.id


async def test_a_completion_retried_while_the_first_runs_charges_its_file_once(
    open_batches: Open,
) -> None:
    router, sdk, _ = await open_batches(files={"client_bytes": 5000})
    upload_id, part_id = await made_whole(sdk, 1500)
    with gated([router.runtime.store], 2):  # the SDK's retry of a completion that timed out
        first, again = await asyncio.gather(
            sdk.uploads.complete(upload_id, part_ids=[part_id]),
            sdk.uploads.complete(upload_id, part_ids=[part_id]),
        )
    assert first.file is not None and again.file is not None
    assert first.file.id == again.file.id
    assert [f.id async for f in sdk.files.list()] == [first.file.id]
    # One file of 1500 bytes is counted (with its entry's 512): as much again fits in 5000.
    await sdk.files.create(file=("b.bin", b"y" * 1500), purpose="user_data")


async def test_a_completion_retried_after_the_first_ended_answers_it_completed(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches(files={"client_bytes": 5000})
    upload_id, part_id = await made_whole(sdk, 1500)
    first = await sdk.uploads.complete(upload_id, part_ids=[part_id])
    # The SDK's retry of a completion whose answer was lost (timed out): as one retried
    # while the first still runs, it answers the Upload completed, not a 400 for a success.
    again = await sdk.uploads.complete(upload_id, part_ids=[part_id])
    assert again.status == "completed" and again.file is not None and first.file is not None
    assert again.file.id == first.file.id
    assert [f.id async for f in sdk.files.list()] == [first.file.id]
    await sdk.files.create(file=("b.bin", b"y" * 1500), purpose="user_data")  # charged once
    with pytest.raises(openai.BadRequestError) as refused:  # nothing added to it, though
        await sdk.uploads.parts.create(upload_id, data=b"z")
    assert refused.value.code == "upload_completed"


async def test_a_completion_that_a_cancel_beat_charges_nothing(open_batches: Open) -> None:
    router, sdk, _ = await open_batches(files={"client_bytes": 5000})
    upload_id, part_id = await made_whole(sdk, 1500)
    with gated([router.runtime.store], 2):
        completed, cancelled = await asyncio.gather(
            sdk.uploads.complete(upload_id, part_ids=[part_id]),
            sdk.uploads.cancel(upload_id),
            return_exceptions=True,
        )
    assert isinstance(completed, openai.BadRequestError), completed
    assert completed.code == "upload_cancelled"
    assert not isinstance(cancelled, BaseException) and cancelled.status == "cancelled"
    assert [f.id async for f in sdk.files.list()] == []
    # The cancelled upload's bytes are given back whole: the client's budget is all there.
    await sdk.files.create(file=("b.bin", b"y" * 4000), purpose="user_data")


async def test_a_part_added_as_its_upload_completes_is_not_left_counted(
    open_batches: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    router, sdk, _ = await open_batches(files={"client_bytes": 5000})
    upload_id, part_id = await made_whole(sdk, 1500)
    store = router.runtime.store
    count, put = store.add_to_bucket, store.put_document
    given_back, late_counted = asyncio.Event(), asyncio.Event()

    async def add_to_bucket(name: str, bucket: int, counts: dict[str, float], ttl_s: float) -> str:
        """The late part is counted once the completion gave its parts' count back."""
        if name.startswith("upload-bytes:") and counts["bytes"] < 0:
            given_back.set()
        elif name.startswith("upload-bytes:"):
            await given_back.wait()
            try:
                return await count(name, bucket, counts, ttl_s)
            finally:
                late_counted.set()
        return await count(name, bucket, counts, ttl_s)

    async def put_document(name: str, data: bytes, ttl_s: float, **kw: bool) -> PutResult:
        """The completion's end is written once the late part was kept."""
        if name.startswith("upload-end:"):
            await late_counted.wait()
        return await put(name, data, ttl_s, **kw)

    monkeypatch.setattr(store, "add_to_bucket", add_to_bucket)
    monkeypatch.setattr(store, "put_document", put_document)
    done, late = await asyncio.gather(
        sdk.uploads.complete(upload_id, part_ids=[part_id]),
        sdk.uploads.parts.create(upload_id, data=b"y" * 300),
    )
    monkeypatch.undo()
    assert done.status == "completed" and late.upload_id == upload_id
    # The file's 1500 bytes (and its entry's 512) are counted, not the late part's 300 too:
    # it went with the upload's other parts.
    await sdk.files.create(file=("b.bin", b"y" * 2400), purpose="user_data")


async def test_of_two_uploads_made_at_once_for_the_last_free_slot_one_is_made(
    open_batches: Open,
) -> None:
    """A client with one slot free among its pending uploads makes two at once: one is made,
    the other refused (a 429 upload_limit_exceeded), never both refused, whatever order the
    state store answers them in (here: both creates' first calls on the client's slots held
    until both are there, then both answered before either goes on: as when both count
    themselves before either reads the total)."""
    router, sdk, _ = await open_batches(files={"max_pending_uploads": 2})
    store = router.runtime.store
    arrived, answered, held = asyncio.Barrier(2), asyncio.Barrier(2), [True]

    def gate(original: Callable[[Any], Awaitable[T]]) -> Callable[[Any], Awaitable[T]]:
        async def call(asked: Any) -> T:
            names = [asked.resource] if isinstance(asked, SlotRequest) else asked
            if not held[0] or not any(n.startswith("upload-slots:") for n in names):
                return await original(asked)
            await arrived.wait()
            found = await original(asked)
            await answered.wait()
            held[0] = False
            return found

        return call

    async def made() -> str:
        upload = await sdk.uploads.create(
            bytes=1, filename="a.txt", mime_type="text/plain", purpose="user_data"
        )
        return upload.id

    await made()
    store.read_buckets = gate(store.read_buckets)  # type: ignore[method-assign,assignment]
    store.acquire = gate(store.acquire)  # type: ignore[method-assign,assignment]
    try:
        at_once = await asyncio.gather(made(), made(), return_exceptions=True)
    finally:
        del store.read_buckets, store.acquire
    assert not held[0], "the creates' calls on the client's slots never met"
    refused = [r for r in at_once if isinstance(r, BaseException)]
    assert len(refused) == 1, at_once
    assert isinstance(refused[0], openai.RateLimitError), refused
    assert refused[0].code == "upload_limit_exceeded"
    with pytest.raises(openai.RateLimitError):  # two pending: none free
        await made()
