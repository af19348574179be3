"""ResilientStateStore (the Redis outage fallback) against a shared store we switch off and on:
requests go on with local state, writes the shared store must not miss are replayed, and the
replica goes back to shared state once it answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from router_service.clock import ManualClock
from router_service.state import (
    DocumentPart,
    MemoryStateStore,
    PutResult,
    RateCount,
    ResilientStateStore,
    SlotGrant,
    SlotRequest,
    StoreUnavailableError,
)


class Flaky(MemoryStateStore):
    """A shared store that can be made unreachable; counts the calls that reached it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.up = True
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if not self.up:
            raise StoreUnavailableError("redis: Connection refused")

    async def acquire(self, request: SlotRequest) -> SlotGrant:
        self._check()
        return await super().acquire(request)

    async def release(self, resource: str, lease_id: str) -> None:
        self._check()
        await super().release(resource, lease_id)

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        self._check()
        return await super().renew(resource, lease_id, ttl_s)

    async def held(self, resources: Sequence[str]) -> list[int]:
        self._check()
        return await super().held(resources)

    async def move_slots(self, source: str, target: str) -> None:
        self._check()
        await super().move_slots(source, target)

    async def rates(self, resources: Sequence[str]) -> list[RateCount]:
        self._check()
        return await super().rates(resources)

    async def extend_deadline(
        self, name: str, until: float, *, decided_at: float | None = None
    ) -> float:
        self._check()
        return await super().extend_deadline(name, until, decided_at=decided_at)

    async def deadlines(self, names: Sequence[str]) -> list[float]:
        self._check()
        return await super().deadlines(names)

    async def clear_deadline(
        self,
        name: str,
        *,
        only: float | None = None,
        decided_at: float | None = None,
        remember: bool = True,
    ) -> None:
        self._check()
        await super().clear_deadline(name, only=only, decided_at=decided_at, remember=remember)

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        self._check()
        return await super().enter(group, member, limit=limit, ttl_s=ttl_s)

    async def leave(self, group: str, member: str, token: str) -> None:
        self._check()
        await super().leave(group, member, token)

    async def members(self, group: str) -> dict[str, int]:
        self._check()
        return await super().members(group)


def resilient(clock: ManualClock) -> tuple[ResilientStateStore, Flaky]:
    shared = Flaky(clock)
    return ResilientStateStore(
        shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1.0
    ), shared


async def test_an_outage_is_served_locally_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    shared_lease = (await store.acquire(SlotRequest("k", 60, 1))).lease_id
    assert shared_lease is not None and not store.degraded and store.fallback_count == 0
    await store.release("k", shared_lease)  # held, it would count in the outage too

    shared.up = False
    with caplog.at_level(logging.WARNING, logger="switchboard.state"):
        local = await store.acquire(SlotRequest("k", 60, 1))
        assert local.lease_id is not None and local.lease_id.startswith("~")
        assert (await store.acquire(SlotRequest("k", 60, 1))).lease_id is None  # per replica
        await store.release("k", local.lease_id)
        assert await store.held(["k"]) == [0]
    assert store.degraded and store.outages == 1 and store.fallback_count == 3
    assert "Connection refused" in store.last_error and "unreachable" in store.detail()
    assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()] == [
        "shared state unreachable (redis: Connection refused): requests go on with this "
        "replica's local state; trying again every 1.0s"
    ]


async def test_rates_are_the_shared_ones_and_the_local_ones_in_an_outage() -> None:
    clock = ManualClock(start=600.0)
    store, shared = resilient(clock)
    await store.acquire(SlotRequest("k", 60, rpm=5, tpm=100, tokens=10))
    assert await store.rates(["k"]) == [RateCount(1, 10)]
    shared.up = False  # this replica counts alone: only what it counted itself
    await store.acquire(SlotRequest("k", 60, rpm=5, tpm=100, tokens=7))
    assert await store.rates(["k"]) == (await store.read(rates=["k"])).rates == [RateCount(1, 7)]
    shared.up = True
    clock.advance(1.0)
    assert await store.rates(["k"]) == [RateCount(1, 10)]


async def test_the_shared_store_is_tried_again_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    shared.up = False
    await store.deadlines(["d"])
    assert shared.calls == 1
    for _ in range(10):
        await store.deadlines(["d"])
    assert shared.calls == 1  # not before the interval
    clock.advance(1.0)
    await store.deadlines(["d"])
    assert shared.calls == 2 and store.degraded

    shared.up = True
    clock.advance(1.0)
    with caplog.at_level(logging.WARNING, logger="switchboard.state"):
        await store.deadlines(["d"])
    assert not store.degraded and store.detail() == "shared state: ok"
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_writes_missed_during_an_outage_are_replayed() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    lease = (await store.acquire(SlotRequest("k", 900, 1))).lease_id
    token = await store.enter("active:p", "s1", limit=1, ttl_s=900)
    await store.extend_deadline("off:k1", clock.now() + 3600)
    assert lease is not None and token is not None

    shared.up = False
    await store.release("k", lease)  # the shared store must hear of it, or hold k for 900 s
    await store.leave("active:p", "s1", token)
    until = clock.now() + 30
    assert await store.extend_deadline("cool:m", until) == until  # answered locally
    await store.clear_deadline("off:k1")
    assert await store.deadlines(["cool:m", "off:k1"]) == [until, 0.0]

    shared.up = True
    clock.advance(1.0)
    assert await store.held(["k"]) == [0]  # the replay ran before this answer
    assert await shared.members("active:p") == {}
    assert await shared.deadlines(["cool:m", "off:k1"]) == [until, 0.0]
    assert not store.degraded


async def test_a_clear_replayed_after_an_outage_lifts_only_the_deadline_it_knew() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    await store.extend_deadline("off:k1", clock.now() + 600)
    await store.extend_deadline("off:k2", clock.now() + 600)
    shared.up = False
    await store.clear_deadline("off:k1")  # queued
    await store.clear_deadline("off:k2")  # queued
    shared.up = True  # for another replica first: this one has not probed it yet
    later = await shared.extend_deadline("off:k1", clock.now() + 900)
    clock.advance(1.0)
    assert await store.deadlines(["off:k1", "off:k2"]) == [later, 0.0]
    assert not store.degraded


async def test_a_clear_replayed_after_an_outage_lifts_no_deadline_unknown_here() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    shared.up = False
    await store.clear_deadline("off:k1")  # none known here: it lifts nothing, now or later
    shared.up = True
    later = await shared.extend_deadline("off:k1", clock.now() + 900)  # another's, since
    clock.advance(1.0)
    assert await store.deadlines(["off:k1"]) == [later]
    assert not store.degraded


async def test_deadlines_known_before_an_outage_hold_during_it() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    until = clock.now() + 600
    await shared.extend_deadline("off:k1", until)  # another replica disabled k1
    await shared.extend_deadline("cool:x", clock.now() + 5)
    assert await store.deadlines(["off:k1", "cool:x"]) == [until, clock.now() + 5]
    await shared.clear_deadline("cool:x")  # and lifted a cooldown
    assert await store.deadlines(["off:k1", "cool:x"]) == [until, 0.0]

    shared.up = False
    assert await store.deadlines(["off:k1", "cool:x"]) == [until, 0.0]


async def test_deadlines_a_guarded_acquire_found_hold_during_an_outage() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    until = clock.now() + 600
    await shared.extend_deadline("off:k1", until)  # another replica disabled k1
    guarded = SlotRequest("lease:k1", 60, unless=("off:k1",))
    assert (await store.acquire(guarded)).deadlines == (until,)

    shared.up = False
    refused = await store.acquire(guarded)  # served locally, from what the shared store said
    assert (refused.lease_id, refused.deadlines) == (None, (until,))


async def test_local_marks_are_left_locally() -> None:
    clock = ManualClock()
    store, shared = resilient(clock)
    shared.up = False
    token = await store.enter("active:p", "s1", limit=1, ttl_s=60)
    assert token is not None and token.startswith("~")
    assert await store.enter("active:p", "s2", limit=1, ttl_s=60) is None
    await store.leave("active:p", "s1", token)
    assert await store.members("active:p") == {}
    shared.up = True
    clock.advance(1.0)
    assert await store.enter("active:p", "s2", limit=1, ttl_s=60) is not None
    assert await shared.members("active:p") == {"s2": 1}


class FlakyDocuments(Flaky):
    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        self._check()
        return await super().put_document(name, data, ttl_s, only_new=only_new)

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        self._check()
        return await super().get_documents(names)

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        self._check()
        return await super().read_document(name, start, max_bytes)

    async def delete_document(self, name: str) -> bool:
        self._check()
        return await super().delete_document(name)


async def test_documents_stored_in_an_outage_stay_local_and_are_found_after_it() -> None:
    clock = ManualClock()
    shared = FlakyDocuments(clock)
    store = ResilientStateStore(
        shared, MemoryStateStore(clock, document_bytes=1000), clock=clock, retry_interval_s=1.0
    )
    assert await store.put_document("before", b"shared", 60) is PutResult.KEPT
    shared.up = False
    assert await store.put_document("during", b"local", 60) is PutResult.KEPT
    assert await store.get_documents(["before", "during"]) == [None, b"local"]
    assert await store.read_document("during", 2, 10) == DocumentPart(b"cal", 5)
    assert await store.read_document("before", 0, 10) is None
    shared.up = True
    clock.advance(1.0)
    assert await store.get_documents(["before", "during"]) == [b"shared", b"local"]
    assert await store.read_document("before", 1, 2) == DocumentPart(b"ha", 6)
    assert await store.read_document("during", 0, 2) == DocumentPart(b"lo", 5)  # still local
    assert await shared.get_documents(["during"]) == [None]  # not replayed to the others
    clock.advance(60)
    assert await store.get_documents(["during"]) == [None]


async def test_a_delete_reaches_the_shared_store_and_the_local_one() -> None:
    clock = ManualClock()
    shared = FlakyDocuments(clock)
    store = ResilientStateStore(
        shared, MemoryStateStore(clock, document_bytes=1000), clock=clock, retry_interval_s=1.0
    )
    assert await store.put_document("shared", b"s", 60) is PutResult.KEPT
    shared.up = False
    assert await store.put_document("local", b"l", 60) is PutResult.KEPT
    assert await store.delete_document("local")  # during the outage: the local one
    with pytest.raises(StoreUnavailableError):  # only Redis knows it: an outage, not "none"
        await store.delete_document("shared")
    shared.up = True
    clock.advance(1.0)
    # stored on Redis once it is back
    assert await store.put_document("local", b"l2", 60) is PutResult.KEPT
    assert await store.delete_document("shared")
    assert await store.delete_document("local")
    assert await store.get_documents(["shared", "local"]) == [None, None]
    assert not await store.delete_document("shared")


async def test_a_forget_during_an_outage_reaches_the_shared_store_once_it_answers() -> None:
    clock = ManualClock()
    shared = FlakyDocuments(clock)
    store = ResilientStateStore(
        shared, MemoryStateStore(clock, document_bytes=1000), clock=clock, retry_interval_s=1.0
    )
    assert await store.put_document("shared", b"s", 60) is PutResult.KEPT
    shared.up = False
    assert await store.put_document("local", b"l", 60) is PutResult.KEPT
    await store.everywhere("delete_document", lambda s: s.delete_document("local"))  # queued
    await store.everywhere("delete_document", lambda s: s.delete_document("shared"))
    assert await store.get_documents(["local"]) == [None]
    shared.up = True
    assert await shared.get_documents(["shared"]) == [b"s"]  # not yet: queued
    clock.advance(1.0)
    assert await store.get_documents(["shared", "local"]) == [None, None]  # replayed first
    assert await shared.get_documents(["shared"]) == [None]


async def test_only_new_documents_are_refused_by_whichever_store_holds_them() -> None:
    clock = ManualClock()
    shared = FlakyDocuments(clock)
    store = ResilientStateStore(
        shared, MemoryStateStore(clock, document_bytes=1000), clock=clock, retry_interval_s=1.0
    )
    assert await store.put_document("before", b"first", 60, only_new=True) is PutResult.KEPT
    assert await store.put_document("before", b"again", 60, only_new=True) is PutResult.EXISTS
    shared.up = False
    assert await store.put_document("during", b"first", 60, only_new=True) is PutResult.KEPT
    assert await store.put_document("during", b"again", 60, only_new=True) is PutResult.EXISTS
    # The shared store's documents are out of reach: this replica keeps its own copy meanwhile…
    assert await store.put_document("before", b"local", 60, only_new=True) is PutResult.KEPT
    shared.up = True
    clock.advance(1.0)
    # …but the shared one was never replaced, and is what every replica reads once it is back.
    assert await store.get_documents(["before"]) == [b"first"]
    # One kept here in the outage is read from here: it holds its name on the shared store too.
    assert await store.put_document("during", b"again", 60, only_new=True) is PutResult.EXISTS
    assert await store.get_documents(["during"]) == [b"first"]
    assert await shared.get_documents(["during"]) == [None]


class Gated(Flaky):
    """A shared store whose `deadlines` answers only once `gate` opens (a slow round trip)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.gate = asyncio.Event()
        self.reached = asyncio.Event()

    async def deadlines(self, names: Sequence[str]) -> list[float]:
        self._check()
        self.reached.set()
        await self.gate.wait()
        return await super().deadlines(names)


async def test_writes_queued_while_the_store_is_probed_are_replayed_too() -> None:
    clock = ManualClock()
    shared = Gated(clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1.0)
    lease = (await store.acquire(SlotRequest("k", 900, 1))).lease_id
    assert lease is not None
    shared.up = False
    await store.held(["k"])  # the outage begins
    shared.up = True
    clock.advance(1.0)
    probe = asyncio.create_task(store.deadlines(["d"]))  # the call that finds it back
    await shared.reached.wait()
    # Meanwhile another request gives its lease back: queued, since the probe has not answered.
    await store.release("k", lease)
    shared.gate.set()
    await probe
    assert not store.degraded
    assert await shared.held(["k"]) == [0]  # not held there until the lease's TTL
