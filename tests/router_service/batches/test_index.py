"""A client's index of the files (or batches) it made (memory and Redis side by side): it holds
`max_ids` ids a period, as `files.max_files` says, whatever the ids' length."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import pytest

from router_service.batches._index import ClientIndex
from router_service.clock import ManualClock
from router_service.state import MemoryStateStore, RedisStateStore
from tests.router_service.state.stores import MakeStore


@pytest.mark.parametrize("prefix", ["file-", "batch_"])
async def test_an_index_takes_max_ids_ids_a_period_and_no_more(
    make_store: MakeStore, prefix: str
) -> None:
    clock = ManualClock()
    index = ClientIndex(make_store(clock), clock, kind="file", period_s=1000, max_ids=5)
    # As the router makes them: a file's 24 hex digits, a batch's 32.
    ids = [prefix + secrets.token_hex(12 if prefix == "file-" else 16) for _ in range(6)]
    added = [await index.add("owner", thing_id) for thing_id in ids]
    assert added == [True] * 5 + [False]
    assert await index.ids("owner") == ids[4::-1]


async def test_an_id_removed_frees_its_place_this_period_or_the_last(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    index = ClientIndex(make_store(clock), clock, kind="batch", period_s=1000, max_ids=3)
    ids = ["batch_" + secrets.token_hex(16) for _ in range(5)]
    assert [await index.add("owner", thing_id) for thing_id in ids[:3]] == [True] * 3
    await index.remove("owner", ids[1])  # refused after it was added
    await index.remove("owner", ids[1])  # taken out once: nothing more
    await index.remove("other", ids[0])  # another owner's index holds none
    assert await index.ids("owner") == [ids[2], ids[0]]
    assert await index.add("owner", ids[3])  # its place is free again, and only its
    assert not await index.add("owner", ids[4])
    assert await index.ids("owner") == [ids[3], ids[2], ids[0]]
    clock.advance(1000)  # the next period: the last one's index is read, and removed from
    await index.remove("owner", ids[3])
    assert await index.ids("owner") == [ids[2], ids[0]]


class AddsAsItIsRead(MemoryStateStore):
    """Memory state where another writer adds `racing` to the index each time it is read, until
    `racing` is empty: another upload of the client's, on another replica, racing a removal."""

    def __init__(self, clock: ManualClock, racing: list[str]) -> None:
        super().__init__(clock)
        self.index = ClientIndex(self, clock, kind="file", period_s=1000, max_ids=5)
        self.racing = racing

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        found = await super().get_documents(names)
        if self.racing:
            assert await self.index.add("owner", self.racing.pop())
        return found


async def test_an_id_removed_as_others_are_added_keeps_theirs() -> None:
    clock = ManualClock()
    refused, *others = ["file-" + secrets.token_hex(12) for _ in range(3)]
    store = AddsAsItIsRead(clock, [])
    assert await store.index.add("owner", refused)
    store.racing = list(others)
    await store.index.remove("owner", refused)  # at its third try
    assert sorted(await store.index.ids("owner")) == sorted(others)


async def test_an_index_emptied_by_removals_is_made_again_by_the_next_add(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    index = ClientIndex(store, clock, kind="file", period_s=1000, max_ids=2)
    refused, kept = ["file-" + secrets.token_hex(12) for _ in range(2)]
    assert await index.add("owner", refused)
    await index.remove("owner", refused)
    name = f"file-index:owner:{int(clock.now() // 1000)}"
    # In memory (one process, one clock) it ends: the resilient store's local copy must, or it
    # takes the appends meant for the shared store; on Redis it stays, empty, to its end.
    assert await store.get_documents([name]) == [
        None if isinstance(store, MemoryStateStore) else b""
    ]
    assert await index.add("owner", kept)
    assert await index.ids("owner") == [kept]


async def test_an_id_appended_as_its_index_is_emptied_on_redis_stays_as_long_as_it(
    redis_url: str, redis_prefix: str
) -> None:
    """Another replica's append that read its clock before the removal landed (or whose clock
    is a little behind) finds the emptied index live and appends to it, keeping its TTL: ended
    (a TTL of Redis's slack, a second), it took that id with it, listed nowhere and counted
    nowhere though its file lives for the period."""
    first_clock, second_clock = ManualClock(1_700_000_500.0), ManualClock(1_700_000_499.5)
    first, second = (
        RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=c)
        for c in (first_clock, second_clock)
    )
    try:
        one, two = (
            ClientIndex(s, c, kind="file", period_s=1000, max_ids=2)
            for s, c in ((first, first_clock), (second, second_clock))
        )
        refused, kept = ["file-" + secrets.token_hex(12) for _ in range(2)]
        assert await one.add("owner", refused)
        await one.remove("owner", refused)
        assert await two.add("owner", kept)  # appended to the emptied one
        assert await one.ids("owner") == [kept]
        # As long as `add` keeps an index: to the end of the next period (1500 s from here).
        pttl = await first._client.execute("PTTL", f"{redis_prefix}:doc:file-index:owner:1700000")
        assert int(pttl) >= 1_500_000
    finally:
        await first.aclose()
        await second.aclose()
