"""The issued keys' log is never begun in a replica's local state: when the shared store goes
away between "no log yet" and the log's first line (Redis restarting empty, flapping), the
issue is refused; a log begun locally would take that replica's later issues and revocations,
which no other replica reads. And an issue or revocation done is answered so when the
compaction after it finds the store gone."""

from __future__ import annotations

import hashlib

import pytest

from router_service.auth import IssuedKeys
from router_service.clock import ManualClock
from router_service.state import (
    AppendResult,
    MemoryStateStore,
    ResilientStateStore,
    StoreUnavailableError,
)
from tests.router_service.state.test_appends import FlakyAppends

pytestmark = pytest.mark.timeout(30)

START = 1_700_000_000.0


class DropsAfterMissing(FlakyAppends):
    """A shared store that becomes unreachable right after it answers an append MISSING."""

    drop_after_missing = True

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        done = await super().append_document(name, data, max_bytes=max_bytes)
        if done is AppendResult.MISSING and self.drop_after_missing:
            self.up = False
        return done


def replica(shared: MemoryStateStore, clock: ManualClock) -> IssuedKeys:
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1)
    return IssuedKeys(store, clock)


def knows(keys: IssuedKeys, secret: str) -> bool:
    return keys.find(hashlib.sha256(secret.encode()).digest()) is not None


async def test_a_log_is_not_begun_locally_when_the_shared_store_drops_meanwhile() -> None:
    clock = ManualClock(START)
    shared = DropsAfterMissing(clock)
    a, b = replica(shared, clock), replica(shared, clock)
    with pytest.raises(StoreUnavailableError):
        await a.issue("app", "first", None)

    shared.up, shared.drop_after_missing = True, False
    clock.advance(1.0)  # A tries the shared store again
    issued, key = await a.issue("app", "second", None)
    await b.refresh()
    assert knows(a, issued) and knows(b, issued)  # the log both replicas read
    await a.revoke(key.id)
    await b.refresh()
    assert not knows(a, issued) and not knows(b, issued)


class DropsAtRewrite(FlakyAppends):
    """A shared store that becomes unreachable when a compaction's rewrite reaches it."""

    drop_at_rewrite = False

    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        if self.drop_at_rewrite:
            self.up = False
        self._check()
        return await super().replace_document(name, data, ttl_s, size=size, head=head)


async def test_an_issue_done_is_answered_when_the_compaction_after_it_fails() -> None:
    """The compaction after an append is the appender's chore, not its answer: the store lost
    then, the key issued (or revoked) is still said so, not refused after the fact (a key
    issued whose secret nobody got, a revocation done that an operator would try again)."""
    clock = ManualClock(START)
    shared = DropsAtRewrite(clock)
    keys = replica(shared, clock)
    for _ in range(127):  # 254 lines of dead keys, and the head: the next line compacts
        await keys.revoke((await keys.issue("app", "gone", None))[1].id)
    shared.drop_at_rewrite = True
    secret, _ = await keys.issue("app", "kept", None)  # the compaction after it fails
    assert knows(keys, secret) and keys.compactions == 0

    shared.up, shared.drop_at_rewrite = True, False
    clock.advance(1.0)  # the shared store is tried again
    await keys.issue("app", "later", None)  # compacts
    assert keys.compactions == 1 and knows(keys, secret)
