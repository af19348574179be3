"""The Uploads API under concurrent calls of one client, through the official `openai` SDK:
parts sent at once, completions retried while the first still runs, a completion racing a
cancel. A gate on the state store's reads of the client's pending parts holds each call there
until the others arrive, so each race is run the same way every time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import openai

from router_service.state import StateStore
from tests.e2e.test_batches_sdk import Open, open_batches

__all__ = ["open_batches"]  # the fixture, used here


@contextmanager
def gated(store: StateStore, calls: int) -> Iterator[None]:
    """Hold the first `calls` reads of a client's pending parts' counts until all of them
    arrived (then every read goes on at once; later ones pass)."""
    original = store.read_buckets
    arrived: list[Sequence[str]] = []
    all_in = asyncio.Event()

    async def read_buckets(names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        if not all_in.is_set() and any(n.startswith("upload-bytes:") for n in names):
            arrived.append(names)
            if len(arrived) == calls:
                all_in.set()
            await all_in.wait()
        return await original(names)

    store.read_buckets = read_buckets  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store.read_buckets
    assert all_in.is_set(), f"{len(arrived)} of {calls} reads arrived"


async def test_parts_sent_at_once_never_take_an_upload_past_its_bytes(open_batches: Open) -> None:
    router, sdk, _ = await open_batches()
    upload = await sdk.uploads.create(
        bytes=10, filename="a.txt", mime_type="text/plain", purpose="user_data"
    )
    with gated(router.runtime.store, 2):
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
    with gated(router.runtime.store, 2):
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
