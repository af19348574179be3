"""An issue is answered as it is in the store: a read back that fails once is tried again, an
append whose reply was lost is recognised by the id chosen before it, and when the store cannot
tell, the error says the key may exist, its id and label, and how to find and end it: never an
error for a key issued that nobody can see, nor a key issued twice. On Redis and in memory."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

import pytest

from router_service.auth import IssuedKeys
from router_service.clock import ManualClock
from router_service.state import (
    AppendResult,
    DocumentPart,
    Landing,
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    StateStore,
    StoreUnavailableError,
)

pytestmark = pytest.mark.timeout(30)

START = 1_700_000_000.0


class _Faults:
    """A real store that fails the reads after its next append (`reads_after_append`), or
    loses an append's reply after the append was done (`lose_reply`)."""

    reads_after_append = 0
    lose_reply = False
    fail_notice = False
    _failing = 0

    def heal(self) -> None:
        self._failing = 0

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        if self._failing:
            self._failing -= 1
            raise StoreUnavailableError("store: read failed")
        part: DocumentPart | None = await super().read_document(  # type: ignore[misc]
            name, start, max_bytes
        )
        return part

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        done: AppendResult = await super().append_document(  # type: ignore[misc]
            name, data, max_bytes=max_bytes
        )
        self._failing, self.reads_after_append = self.reads_after_append, 0
        if self.lose_reply and done is AppendResult.APPENDED:
            self.lose_reply = False
            raise StoreUnavailableError("store: connection lost before the reply")
        return done

    async def land_flight(self, name: str, token: str, landing: Landing) -> None:
        if self.fail_notice:
            self.fail_notice = False
            raise StoreUnavailableError("store: the notice was not sent")
        await super().land_flight(name, token, landing)  # type: ignore[misc]


class MemoryFaults(_Faults, MemoryStateStore):
    pass


class RedisFaults(_Faults, RedisStateStore):
    pass


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[_Faults]:
    clock = ManualClock(START)
    if request.param == "memory":
        made: StateStore = MemoryFaults(clock)
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        made = RedisFaults.from_url(url, prefix=prefix, clock=clock)
    yield made  # type: ignore[misc]
    await made.aclose()


def replica(store: _Faults) -> IssuedKeys:
    assert isinstance(store, StateStore)
    return IssuedKeys(store, ManualClock(START))


def behind_fallback(store: _Faults) -> IssuedKeys:
    """A replica as `open_store` makes one on Redis: the shared store behind this replica's
    local fallback (which answers from local state for `retry_interval_s` after a failure)."""
    assert isinstance(store, StateStore)
    clock = ManualClock(START)  # never moved: the fallback's retry interval never passes
    local = MemoryStateStore(clock)
    return IssuedKeys(ResilientStateStore(store, local, clock=clock, retry_interval_s=1.0), clock)


def knows(keys: IssuedKeys, secret: str) -> bool:
    return keys.find(hashlib.sha256(secret.encode()).digest()) is not None


async def test_a_read_back_that_fails_once_is_tried_again(store: _Faults) -> None:
    a, b = replica(store), replica(store)
    await a.issue("app", "warm", None)  # the log begun
    store.reads_after_append = 1
    secret, key = await a.issue("app", "laptop", None)
    await b.refresh()
    assert knows(a, secret) and knows(b, secret)
    # A revocation written is answered so, its read back failing or not.
    store.reads_after_append = 1000  # none of its read backs is answered
    assert (await a.revoke(key.id)).id == key.id
    store.heal()
    await b.refresh()
    assert not knows(b, secret)


async def test_an_issue_the_store_cannot_confirm_names_the_key_to_look_for(
    store: _Faults,
) -> None:
    keys = replica(store)
    await keys.issue("app", "warm", None)
    store.reads_after_append = 1000  # every read back fails
    with pytest.raises(StoreUnavailableError) as unconfirmed:
        await keys.issue("app", "ci runner", None)
    error = unconfirmed.value
    assert error.code == "client_key_unconfirmed"
    assert "may have been issued" in error.message and "ListClientKeys" in error.message
    assert "'ci runner'" in error.message
    found = re.search(r"ck_[0-9a-f]{16}", error.message)
    assert found is not None
    # Once the store answers, the key is there, found by its id and label, and revoked.
    store.heal()
    await keys.refresh()
    listed = {key.id: key.label for key in keys.listed("app")}
    assert listed[found.group()] == "ci runner"
    await keys.revoke(found.group())
    assert found.group() not in {key.id for key in keys.listed("app")}


async def test_an_append_whose_reply_was_lost_is_recognised_by_its_id(store: _Faults) -> None:
    keys = replica(store)
    await keys.issue("app", "warm", None)
    store.lose_reply = True
    secret, key = await keys.issue("app", "laptop", None)
    assert knows(keys, secret)
    assert [k.id for k in keys.listed("app") if k.label == "laptop"] == [key.id]  # once


async def test_an_issue_found_after_a_lost_reply_is_heard_by_the_other_replicas(
    store: _Faults,
) -> None:
    """The key returned is known on every replica at once (the notice an append sends), not
    only after their periodic read: a browser's next call may reach any of them."""
    writer, follower = replica(store), replica(store)
    await writer.issue("app", "warm", None)
    follower.start()  # its clock never moves: only a notice makes it read again
    try:
        await asyncio.wait_for(follower.synced(0), 10)
        await asyncio.wait_for(follower.resting.wait(), 10)
        store.lose_reply = True
        secret, _ = await writer.issue("app", "laptop", None)
        while not knows(follower, secret):
            await asyncio.wait_for(follower.synced(follower.syncs), 10)
    finally:
        await follower.aclose()


async def test_behind_the_local_fallback_one_failure_still_gets_the_key(store: _Faults) -> None:
    """As deployed on Redis: a read back that fails once, an append whose reply was lost, or
    a notice not sent (a chore) is no 503 for a key the log holds: the read back asks the
    shared store again, not the local state the fallback answers from meanwhile."""
    keys, other = behind_fallback(store), behind_fallback(store)
    await keys.issue("app", "warm", None)
    store.reads_after_append = 1
    first, _ = await keys.issue("app", "laptop", None)
    store.lose_reply = True
    second, _ = await keys.issue("app", "desk", None)
    store.fail_notice = True
    third, _ = await keys.issue("app", "phone", None)
    await other.refresh()
    assert all(knows(keys, s) and knows(other, s) for s in (first, second, third))
