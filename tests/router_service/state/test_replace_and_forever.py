"""`StateStore.replace_document` (a compare-and-swap on a growing document) and documents kept
`FOREVER` (no expiry; never dropped to make room), the same on each store."""

from __future__ import annotations

import pytest

from router_service.clock import ManualClock
from router_service.state import FOREVER, AppendResult, MemoryStateStore, PutResult, RedisStateStore
from tests.router_service.state.stores import MakeStore

pytestmark = pytest.mark.timeout(30)


async def test_a_replace_happens_only_on_what_the_caller_read(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert await store.replace_document("log", b"x", 60, size=0, head=b"") is False  # none yet
    assert await store.put_document("log", b"g1\nline\n", 60) is PutResult.KEPT
    assert not await store.replace_document("log", b"g2\n", 60, size=7, head=b"g1\n")  # grew
    assert not await store.replace_document("log", b"g2\n", 60, size=8, head=b"g0\n")  # redone
    clock.advance(30)
    assert await store.replace_document("log", b"g2\n", 60, size=8, head=b"g1\n")
    assert await store.get_documents(["log"]) == [b"g2\n"]
    assert await store.append_document("log", b"a\n", max_bytes=100) is AppendResult.APPENDED
    assert not await store.replace_document("log", b"g3\n", 60, size=3, head=b"g2\n")  # grew
    clock.advance(59.9)  # the replace's own expiry: 60 s from when it was made
    assert await store.get_documents(["log"]) == [b"g2\na\n"]
    clock.advance(0.1)
    assert await store.get_documents(["log"]) == [None]
    assert not await store.replace_document("log", b"g3\n", 60, size=5, head=b"g2\n")


async def test_a_document_kept_forever_does_not_expire(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert await store.put_document("log", b"h\n", FOREVER, only_new=True) is PutResult.KEPT
    assert await store.put_document("log", b"x", FOREVER, only_new=True) is PutResult.EXISTS
    assert await store.append_document("log", b"a\n", max_bytes=100) is AppendResult.APPENDED
    assert await store.put_document("old", b"h\n", 60) is PutResult.KEPT  # one with a TTL...
    assert await store.replace_document("old", b"r\n", FOREVER, size=2, head=b"h\n")  # ...loses it
    assert await store.replace_document("log", b"r\n", FOREVER, size=4, head=b"h\n")
    clock.advance(1e12)
    assert await store.get_documents(["log", "old"]) == [b"r\n", b"r\n"]


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


async def test_on_redis_a_document_kept_forever_has_no_ttl(
    redis_url: str, redis_prefix: str
) -> None:
    """No TTL: a `volatile-*` eviction policy passes it by (and a rewrite drops an old TTL)."""
    store = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=ManualClock())
    try:
        assert await store.put_document("log", b"h\n", FOREVER) is PutResult.KEPT
        assert await store.put_document("old", b"h\n", 60) is PutResult.KEPT
        assert 0 < await pttl(store, redis_prefix, "old") <= 61_000
        assert await store.replace_document("old", b"r\n", FOREVER, size=2, head=b"h\n")
        assert [await pttl(store, redis_prefix, name) for name in ("log", "old")] == [-1, -1]
    finally:
        await store.aclose()


async def pttl(store: RedisStateStore, prefix: str, name: str) -> int:
    return int(await store._client.execute("PTTL", f"{prefix}:doc:{name}"))
