"""Documents in memory are held to a byte budget (`state.memory_document_bytes`), oldest first,
and expire by the injected clock; on Redis they never pass through the read cache."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.config import StateConfig
from router_service.state import (
    AppendResult,
    MemoryStateStore,
    PutResult,
    RedisStateStore,
    open_store,
    tombstone_name,
)
from tests.replicas.redis_fixtures import keys_under


async def test_memory_budget_drops_the_oldest_first() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock, document_bytes=100)
    assert await store.put_document("a", b"x" * 39, 60) is PutResult.KEPT  # 40 bytes with its name
    assert await store.put_document("b", b"y" * 39, 60) is PutResult.KEPT
    assert await store.put_document("c", b"z" * 39, 60) is PutResult.KEPT  # over 100: "a" goes
    assert await store.get_documents(["a", "b", "c"]) == [None, b"y" * 39, b"z" * 39]
    assert store.documents.size_bytes == 80
    # larger than the budget
    assert await store.put_document("huge", b"h" * 100, 60) is PutResult.TOO_LARGE
    assert await store.get_documents(["huge", "b"]) == [None, b"y" * 39]


async def test_memory_budget_drops_tombstones_before_larger_owners() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock, document_bytes=200)
    dead = tombstone_name("file", "c", "1")  # 17 bytes with its data
    assert await store.put_document(dead, b"t", 60) is PutResult.KEPT
    assert await store.put_document("file-data:c:2", b"x" * 87, 60) is PutResult.KEPT  # 100
    # Over 200: the owner holding the most (the content's) gave its room before; the
    # tombstone goes first now, small as it is.
    assert await store.put_document("file:c:2", b"y" * 92, 60) is PutResult.KEPT  # 100
    assert await store.get_documents([dead, "file-data:c:2"]) == [None, b"x" * 87]


async def test_memory_budget_frees_expired_documents_before_live_ones() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock, document_bytes=100)
    assert await store.put_document("o", b"x" * 39, 600) is PutResult.KEPT  # the oldest, still live
    assert await store.put_document("s", b"y" * 39, 10) is PutResult.KEPT
    clock.advance(10)
    assert await store.put_document("n", b"z" * 39, 600) is PutResult.KEPT
    assert await store.get_documents(["o", "n"]) == [b"x" * 39, b"z" * 39]
    assert store.documents.size_bytes == 80


async def test_expired_documents_are_swept_before_the_budget_is_reached() -> None:
    # Cached answers under a short TTL, written steadily: what has expired must not stay until
    # the (default, 64 MiB) budget is full. 100 writes a second for 100 s, each live for 10 s.
    clock = ManualClock()
    store = MemoryStateStore(clock)
    for second in range(100):
        for i in range(100):
            await store.put_document(f"cache:c:{second}-{i}", b"x" * 29, 10)  # 40 bytes
        clock.advance(1)
    live = 10 * 100 * 40
    assert live <= store.documents.size_bytes <= 3 * live  # without sweeps: 400,000 bytes
    assert await store.get_documents(["cache:c:99-0", "cache:c:0-0"]) == [b"x" * 29, None]


async def test_open_store_takes_the_budget_from_config() -> None:
    store = await open_store(StateConfig(memory_document_bytes=10))
    assert isinstance(store, MemoryStateStore)
    assert await store.put_document("a", b"x" * 10, 60) is PutResult.TOO_LARGE
    assert await store.put_document("a", b"x" * 9, 60) is PutResult.KEPT


async def test_redis_documents_expire_and_skip_the_read_cache(
    redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    store = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    try:
        await store.set_value("sticky", "v", 60)
        assert await store.get_values(["sticky"]) == ["v"]  # the cache is working
        before = store.read_cache_counts()
        assert await store.put_document("resp:1", b"\xff\x00doc", 120) is PutResult.KEPT
        for _ in range(3):
            assert await store.get_documents(["resp:1"]) == [b"\xff\x00doc"]
        assert store.read_cache_counts() == before  # neither hits nor misses: not cached
        keys = keys_under(redis_url, redis_prefix)
        assert 120_000 < keys[f"{redis_prefix}:doc:resp:1"] <= 121_000  # TTL plus slack
    finally:
        await store.aclose()


async def test_memory_budget_drops_the_largest_owners_oldest_first() -> None:
    # One owner writing in a loop drops its own documents, not the others' ("a:" and "b:" are
    # the owners of stored responses' names, `resp:<client>:<id>`).
    store = MemoryStateStore(ManualClock(), document_bytes=200)
    # 40 bytes with its name
    assert await store.put_document("a:1", b"x" * 37, 60) is PutResult.KEPT
    for i in range(10):
        assert await store.put_document(f"b:{i}", b"y" * 37, 60) is PutResult.KEPT
    assert await store.get_documents(["a:1", "b:9", "b:6", "b:5"]) == [b"x" * 37] * 1 + [
        b"y" * 37
    ] * 2 + [None]
    assert store.documents.size_bytes == 200
    # A smaller holder's write takes room from the largest one.
    assert await store.put_document("a:2", b"x" * 37, 60) is PutResult.KEPT
    assert await store.get_documents(["a:1", "a:2", "b:6"]) == [b"x" * 37, b"x" * 37, None]


async def test_a_refused_only_new_document_drops_nothing_to_make_room() -> None:
    store = MemoryStateStore(ManualClock(), document_bytes=100)
    assert await store.put_document("a:1", b"x" * 37, 60) is PutResult.KEPT  # 40 with its name
    assert await store.put_document("a:2", b"y" * 37, 60) is PutResult.KEPT
    again = await store.put_document("a:2", b"z" * 57, 60, only_new=True)  # would need a:1's room
    assert again is PutResult.EXISTS
    assert await store.get_documents(["a:1", "a:2"]) == [b"x" * 37, b"y" * 37]
    assert store.documents.size_bytes == 80


async def test_memory_appends_grow_a_document_in_place() -> None:
    # Copying the whole document on each append made a streamed background response's events
    # (appended a chunk at a time, up to max_stream_bytes) quadratic to write.
    store = MemoryStateStore(ManualClock(), document_bytes=1000)
    assert await store.put_document("log:a", b"x", 60) is PutResult.KEPT
    assert await store.append_document("log:a", b"1", max_bytes=100) is AppendResult.APPENDED
    held = store.documents._entries["log:a"][0]
    assert await store.append_document("log:a", b"2", max_bytes=100) is AppendResult.APPENDED
    assert store.documents._entries["log:a"][0] is held  # grown, not copied
    (read,) = await store.get_documents(["log:a"])
    assert read == b"x12" and type(read) is bytes
    assert await store.append_document("log:a", b"3", max_bytes=100) is AppendResult.APPENDED
    assert read == b"x12"  # what a reader got does not change under it
    assert store.documents.size_bytes == len("log:a") + 4
