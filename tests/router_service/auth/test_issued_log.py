"""The issued client keys' log is compacted (revoked and expired keys' lines dropped) without
losing what replicas append meanwhile, and outlives everything else in the store: it has no
expiry and the memory store never drops it to make room."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
import pytest

from router_service.auth import IssuedKeys
from router_service.auth._issued_log import KeySet
from router_service.clock import ManualClock
from router_service.config import AuthConfig
from router_service.state import DocumentPart, MemoryStateStore, RedisStateStore, StateStore

pytestmark = pytest.mark.timeout(60)

START = 1_700_000_000.0
LOG = "client-keys"


class Hold:
    """Stops a store's `replace_document` (a compaction's rewrite, after its read) until
    released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    async def wait(self) -> None:
        self.reached.set()
        await self.released.wait()


class HeldMemory(MemoryStateStore):
    hold: Hold | None = None

    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        if self.hold is not None:
            await self.hold.wait()
        return await super().replace_document(name, data, ttl_s, size=size, head=head)


class HeldRedis(RedisStateStore):
    hold: Hold | None = None

    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        if self.hold is not None:
            await self.hold.wait()
        return await super().replace_document(name, data, ttl_s, size=size, head=head)


def mirror(store: StateStore, clock: ManualClock) -> IssuedKeys:
    return IssuedKeys(store, clock).configured(AuthConfig(open=True, max_issued_keys=5))


def knows(keys: IssuedKeys, secret: str) -> bool:
    return keys.find(hashlib.sha256(secret.encode()).digest()) is not None


async def log_bytes(store: StateStore) -> int:
    part = await store.read_document(LOG, 0, 0)
    assert part is not None
    return part.size


async def test_issue_and_revoke_far_past_the_old_bound_of_the_log() -> None:
    """20 000 issues and as many revocations (the log was full after some 15 000 lines) and a
    key that expires each time: the keys issued first still work, the log stays small."""
    clock = ManualClock(START)
    store = MemoryStateStore(clock)
    keys = mirror(store, clock)
    first, _ = await keys.issue("app", "kept", None)
    for n in range(20_000):
        _, issued = await keys.issue("app", f"n{n}", None)
        await keys.revoke(issued.id)
        await keys.issue("app", "expiring", 1.0)
        clock.advance(1.0)
    assert knows(keys, first)
    assert [key.label for key in keys.listed("app")] == ["kept"]
    assert keys.compactions > 100
    assert await log_bytes(store) < 256 * 1024


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_appends_while_a_replica_compacts_are_kept(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Replica A reads the log to compact it; B issues and revokes before A writes the
    rewrite: A's rewrite is refused (the log grew), nothing is lost. A compacts again: B, still
    reading the old log, moves to the new one and knows the same keys."""
    clock = ManualClock(START)
    store_a: HeldMemory | HeldRedis
    if backend == "memory":
        store_a = HeldMemory(clock)
        store_b: StateStore = store_a
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        held = HeldRedis.from_url(url, prefix=prefix, clock=clock)
        assert isinstance(held, HeldRedis)
        store_a = held
        store_b = RedisStateStore.from_url(url, prefix=prefix, clock=clock)
    a, b = mirror(store_a, clock), mirror(store_b, clock)
    try:
        kept, kept_key = await a.issue("app", "kept", None)
        gone = [(await a.issue("app", "gone", None))[1] for _ in range(3)]
        for key in gone:
            await a.revoke(key.id)
        await b.refresh()

        store_a.hold = Hold()
        compacting = asyncio.create_task(a.compact())
        await store_a.hold.reached.wait()  # A read the log and made its rewrite
        late, _ = await b.issue("app", "late", None)
        await b.revoke(kept_key.id)  # revoked while A compacts
        store_a.hold.released.set()
        assert await compacting is False  # the log grew since A read it
        await a.refresh()
        for keys in (a, b):
            assert [k.label for k in keys.listed("app")] == ["late"]
            assert knows(keys, late) and not knows(keys, kept)

        store_a.hold = None
        before = await log_bytes(store_a)
        assert await a.compact() is True
        assert await log_bytes(store_a) < before
        clock.advance(1.0)  # listed by when they were issued
        again, _ = await b.issue("app", "again", None)  # B appends to the new log
        for keys in (a, b):
            await keys.refresh()
            assert [k.label for k in keys.listed("app")] == ["late", "again"]
            assert knows(keys, late) and knows(keys, again)
    finally:
        for store in {store_a, store_b}:
            await store.aclose()


async def test_the_log_stays_when_other_documents_fill_the_memory_store() -> None:
    clock = ManualClock(START)
    store = MemoryStateStore(clock, document_bytes=64 * 1024)
    keys = mirror(store, clock)
    secrets_ = [(await keys.issue("app", f"k{n}", None))[0] for n in range(5)]
    for n in range(1_000):  # 30 times the documents' budget, from as many owners
        await store.put_document(f"resp:c{n:04}:1", b"r" * 2_000, 3600)
    clock.advance(20 * 365 * 86400.0)  # longer than any TTL the log ever had
    fresh = mirror(store, clock)
    await fresh.refresh()
    assert all(knows(fresh, secret) for secret in secrets_)


async def test_a_malformed_line_is_left_out_not_applied() -> None:
    """An issue line whose expiry is no number (written by hand, or by something else) is left
    out; it neither stops the keys around it nor fails the lookups of its own key."""
    clock = ManualClock(START)
    store = MemoryStateStore(clock)
    keys = mirror(store, clock)
    before, _ = await keys.issue("app", "before", None)
    sha = hashlib.sha256(b"sk-hand-written").hexdigest()
    bad: dict[str, object] = {"op": "issue", "id": "ck_bad", "client": "app", "label": "x"}
    bad["sha256"] = sha
    bad |= {"created": START, "expires": "soon", "max": 5}
    await store.append_document(LOG, orjson.dumps(bad) + b"\n", max_bytes=1 << 20)
    after, _ = await keys.issue("app", "after", None)
    fresh = mirror(store, clock)
    await fresh.refresh()
    assert knows(fresh, before) and knows(fresh, after)
    assert not knows(fresh, "sk-hand-written")
    assert sorted(key.label for key in fresh.listed("app")) == ["after", "before"]


class Faulty(MemoryStateStore):
    """Fails the follower's next read of the log with an error no one expects (a bug, not an
    outage); other readers (a writer folds what it appended) read on."""

    fail_next = False
    failed = asyncio.Event()

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        task = asyncio.current_task()
        following = task is not None and task.get_name() == "switchboard-client-keys"
        if self.fail_next and name == LOG and following:
            self.fail_next = False
            self.failed.set()
            raise RuntimeError("an unexpected failure")
        return await super().read_document(name, start, max_bytes)


async def test_the_follower_outlives_an_unexpected_failure() -> None:
    """A read that fails in a way nobody planned for is logged, and the replica goes on
    hearing the others' issues and revocations (else it would keep revoked keys for good)."""
    clock = ManualClock(START)
    store = Faulty(clock)
    store.failed = asyncio.Event()
    follower, writer = mirror(store, clock), mirror(store, clock)
    follower.start()
    try:
        await asyncio.wait_for(follower.synced(0), 10)
        store.fail_next = True
        await writer.issue("app", "lost", None)
        await asyncio.wait_for(store.failed.wait(), 10)
        reads = follower.syncs
        secret, _ = await writer.issue("app", "heard", None)
        await asyncio.wait_for(follower.synced(reads), 10)
        assert knows(follower, secret)
    finally:
        await follower.aclose()


def test_an_issue_past_its_clients_bound_at_its_instant_is_void() -> None:
    """Folding the log: an issue that finds its client with `max` keys of its kind live at its
    `created` instant (in log order) is void, on every replica alike; expired and revoked keys
    leave room, and ephemeral secrets are counted apart. A line that is not an event is left out."""

    def issue(key_id: str, created: float, expires: float | None, **more: Any) -> bytes:
        event = {"op": "issue", "id": key_id, "client": "app", "label": "", "max": 2}
        digest = hashlib.sha256(key_id.encode()).hexdigest()
        return orjson.dumps(
            {**event, "sha256": digest, "created": created, "expires": expires, **more}
        )

    keys = KeySet()
    grant = {"model": "voice", "session": "{}"}
    lines = [
        issue("k1", 10, 100),
        issue("k2", 20, None),
        issue("k3", 50, None),  # k1 and k2 live: void
        issue("e1", 50, 90, realtime=grant),  # an ephemeral secret: bounded apart
        issue("k4", 150, None),  # k1 expired at 100: room
        orjson.dumps({"op": "revoke", "id": "k2"}),
        issue("k5", 160, 200),  # k2 revoked: room
        issue("k6", 170, None),  # k4 and k5: void
        issue("k7", 200, None),  # k5 expired at 200: room
        issue("e2", 210, 300, realtime={"model": 1, "session": "{}"}),  # not ours: left out
    ]
    for line in lines:
        keys.fold_line(line)
    assert list(keys.by_id) == ["k1", "e1", "k4", "k5", "k7"]


def test_an_ephemeral_secret_past_its_clients_share_at_its_instant_is_void() -> None:
    """An ephemeral secret's line counts in its client's share (`max_bytes`, as its issuer
    applied it) while live: one that would pass it is void on every replica alike; another
    client's secrets and expired or revoked ones leave room."""

    def secret(key_id: str, client: str, created: float, expires: float) -> bytes:
        event = {"op": "issue", "id": key_id, "client": client, "label": "", "max": 100}
        grant = {"model": "voice", "session": "x" * 300}
        digest = hashlib.sha256(key_id.encode()).hexdigest()
        return orjson.dumps(
            {**event, "sha256": digest, "created": created, "expires": expires}
            | {"realtime": grant, "max_bytes": 1100}
        )

    keys = KeySet()
    lines = [
        secret("a1", "app", 10, 100),
        secret("a2", "app", 20, 200),
        secret("a3", "app", 30, 300),  # a1 and a2 live: past the share, void
        secret("w1", "web", 30, 300),  # another client's share
        secret("a4", "app", 100, 300),  # a1 expired at 100: room
        orjson.dumps({"op": "revoke", "id": "a2"}),
        secret("a5", "app", 110, 300),  # a2 revoked: room
        secret("a6", "app", 120, 300),  # a4 and a5: void
    ]
    assert all(400 < len(line) < 550 for line in lines if b"issue" in line)  # two fit in 1100
    for line in lines:
        keys.fold_line(line)
    assert list(keys.by_id) == ["a1", "w1", "a4", "a5"]  # a2 revoked, a3 and a6 void
    assert keys.ephemeral_bytes("app", 150) == sum(len(lines[i]) + 1 for i in (4, 6))
