"""`StateStore.replace_document` (a compare-and-swap on a growing document) and documents kept
`FOREVER` (no expiry; never dropped to make room), the same on each store."""

from __future__ import annotations

import pytest

from router_service.clock import ManualClock
from router_service.state import FOREVER, AppendResult, MemoryStateStore, PutResult
from tests.router_service.state.stores import MakeStore

pytestmark = pytest.mark.timeout(30)


async def test_a_replace_happens_only_on_what_the_caller_read(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert await store.replace_document("log", b"x", size=0, head=b"") is False  # none yet
    assert await store.put_document("log", b"g1\nline\n", 60) is PutResult.KEPT
    assert not await store.replace_document("log", b"g2\n", size=7, head=b"g1\n")  # size moved
    assert not await store.replace_document("log", b"g2\n", size=8, head=b"g0\n")  # rewritten
    assert await store.replace_document("log", b"g2\n", size=8, head=b"g1\n")
    assert await store.get_documents(["log"]) == [b"g2\n"]
    assert await store.append_document("log", b"a\n", max_bytes=100) is AppendResult.APPENDED
    assert not await store.replace_document("log", b"g3\n", size=3, head=b"g2\n")  # appended
    clock.advance(60)  # the first write's expiry holds through a replace
    assert await store.get_documents(["log"]) == [None]
    assert not await store.replace_document("log", b"g3\n", size=5, head=b"g2\n")


async def test_a_document_kept_forever_does_not_expire(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert await store.put_document("log", b"h\n", FOREVER, only_new=True) is PutResult.KEPT
    assert await store.put_document("log", b"x", FOREVER, only_new=True) is PutResult.EXISTS
    assert await store.append_document("log", b"a\n", max_bytes=100) is AppendResult.APPENDED
    assert await store.replace_document("log", b"r\n", size=4, head=b"h\n")
    clock.advance(1e12)
    assert await store.get_documents(["log"]) == [b"r\n"]


async def test_a_document_kept_forever_stays_when_others_fill_the_budget() -> None:
    """Many clients' documents take the whole budget, many times over: the older ones go, the
    one kept forever (the largest holder: the first to go were it counted) does not."""
    store = MemoryStateStore(ManualClock(), document_bytes=10_000)
    log = b"k" * 6_000
    assert await store.put_document("client-keys", log, FOREVER) is PutResult.KEPT
    for n in range(100):
        assert await store.put_document(f"resp:c{n:03}:1", b"r" * 900, 3600) is PutResult.KEPT
    assert await store.get_documents(["client-keys", "resp:c000:1"]) == [log, None]
    assert await store.append_document("client-keys", b"+", max_bytes=7_000) is (
        AppendResult.APPENDED
    )
    assert store.documents.size_bytes <= 10_000
    assert await store.delete_document("client-keys")
    assert await store.get_documents(["client-keys"]) == [None]
