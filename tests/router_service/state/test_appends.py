"""`StateStore.append_document`: the same answers from each store (the contract fixture), appends
from two replicas at once on Redis all kept, and the outage fallback's rule for them."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from router_service.clock import ManualClock
from router_service.state import (
    AppendResult,
    DocumentPart,
    MemoryStateStore,
    PutResult,
    RedisStateStore,
    ResilientStateStore,
    StoreUnavailableError,
)
from tests.router_service.state.stores import MakeStore
from tests.router_service.state.test_redis_fallback import FlakyDocuments


async def test_an_append_extends_a_live_document_and_keeps_its_expiry(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    binary = bytes(range(256))
    assert await store.put_document("conv:a", b"head|", 60) is PutResult.KEPT
    assert await store.append_document("conv:a", binary, max_bytes=1000) is AppendResult.APPENDED
    assert await store.append_document("conv:a", b"|", max_bytes=1000) is AppendResult.APPENDED
    assert await store.get_documents(["conv:a"]) == [b"head|" + binary + b"|"]
    clock.advance(59.9)
    assert await store.append_document("conv:a", b"x", max_bytes=1000) is AppendResult.APPENDED
    clock.advance(0.1)  # the creation's expiry, not the append's
    assert await store.get_documents(["conv:a"]) == [None]
    assert await store.append_document("conv:a", b"x", max_bytes=1000) is AppendResult.MISSING


async def test_an_append_past_its_bound_or_to_nothing_changes_nothing(
    make_store: MakeStore,
) -> None:
    store = make_store(ManualClock())
    assert await store.append_document("nope", b"x", max_bytes=10) is AppendResult.MISSING
    assert await store.get_documents(["nope"]) == [None]
    assert await store.put_document("conv:a", b"12345", 60) is PutResult.KEPT
    assert await store.append_document("conv:a", b"123456", max_bytes=10) is AppendResult.TOO_LARGE
    assert await store.append_document("conv:a", b"12345", max_bytes=10) is AppendResult.APPENDED
    assert await store.get_documents(["conv:a"]) == [b"1234512345"]
    assert await store.delete_document("conv:a")
    assert await store.append_document("conv:a", b"x", max_bytes=10) is AppendResult.MISSING


async def test_appends_of_two_replicas_at_once_are_all_kept(
    redis_url: str, redis_prefix: str
) -> None:
    """Each replica appends 40 records while the other does: a read-then-write would lose some."""
    clock = ManualClock()
    replicas = [
        RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock) for _ in range(2)
    ]
    try:
        assert await replicas[0].put_document("conv:a", b"", 60) is PutResult.KEPT
        records = [f"<{r}.{i}>".encode() for r in range(2) for i in range(40)]
        done = await asyncio.gather(
            *(
                replicas[n % 2].append_document("conv:a", record, max_bytes=10_000)
                for n, record in enumerate(records)
            )
        )
        assert set(done) == {AppendResult.APPENDED}
        (kept,) = await replicas[1].get_documents(["conv:a"])
        assert kept is not None
        assert sorted(kept.replace(b"><", b">\n<").split(b"\n")) == sorted(records)
    finally:
        for replica in replicas:
            await replica.aclose()


def test_the_memory_store_counts_an_appended_document_in_its_budget() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock, document_bytes=100)
    assert store.documents.put("o:a", b"x" * 40, 60) is PutResult.KEPT
    assert store.documents.append("o:a", b"y" * 40, max_bytes=1000) is AppendResult.APPENDED
    assert store.documents.size_bytes == len("o:a") + 80
    # Larger than the whole room: it is not kept, as a put that large is not.
    assert store.documents.append("o:a", b"z" * 40, max_bytes=1000) is AppendResult.MISSING
    assert store.documents.size_bytes == 0


class FlakyAppends(FlakyDocuments):
    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        self._check()
        return await super().append_document(name, data, max_bytes=max_bytes)


async def test_an_outage_refuses_appends_to_shared_documents_and_keeps_local_ones() -> None:
    clock = ManualClock()
    shared = FlakyAppends(clock)
    store = ResilientStateStore(
        shared, MemoryStateStore(clock, document_bytes=1000), clock=clock, retry_interval_s=1.0
    )
    assert await store.put_document("shared", b"s", 60) is PutResult.KEPT
    assert await store.append_document("shared", b"1", max_bytes=100) is AppendResult.APPENDED
    shared.up = False
    with pytest.raises(StoreUnavailableError) as refused:
        await store.append_document("shared", b"2", max_bytes=100)
    assert "redis" not in refused.value.message  # the caller reads it: no address, no error text
    assert await store.put_document("local", b"l", 60) is PutResult.KEPT
    assert await store.append_document("local", b"2", max_bytes=100) is AppendResult.APPENDED
    shared.up = True
    clock.advance(1.0)
    assert await store.append_document("local", b"3", max_bytes=100) is AppendResult.APPENDED
    assert await store.get_documents(["shared", "local"]) == [b"s1", b"l23"]
    assert await shared.get_documents(["local"]) == [None]


async def test_a_document_is_read_on_from_where_a_reader_stopped(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert await store.read_document("log", 0, 10) is None
    text = "é|x\n".encode() * 3  # bytes, not characters: a read may split a character
    assert await store.put_document("log", text[:5], 60) is PutResult.KEPT
    assert await store.append_document("log", text[5:], max_bytes=100) is AppendResult.APPENDED
    assert await store.read_document("log", 0, 0) == DocumentPart(b"", len(text))
    parts = [await store.read_document("log", start, 4) for start in range(0, len(text), 4)]
    assert b"".join(p.data for p in parts if p is not None) == text
    assert await store.read_document("log", 1, 2) == DocumentPart(text[1:3], len(text))
    assert await store.read_document("log", len(text) + 5, 4) == DocumentPart(b"", len(text))
    clock.advance(60)
    assert await store.read_document("log", 0, 10) is None


async def test_a_read_of_an_appended_document_copies_its_part_once() -> None:
    """An appended document is held in a bytearray: its part read is copied out of it once
    (a bytearray's slice, then `bytes` of it, was two copies a read: ~2 MiB at once for 1)."""
    store = MemoryStateStore(ManualClock())
    part = 1 << 20
    assert await store.put_document("log", b"x" * part, 60) is PutResult.KEPT
    assert await store.append_document("log", b"y" * part, max_bytes=4 * part) is (
        AppendResult.APPENDED
    )
    tracemalloc.start()
    try:
        got = await store.read_document("log", part // 2, part)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == DocumentPart(b"x" * (part // 2) + b"y" * (part // 2), 2 * part)
    assert peak < part * 3 // 2, peak
