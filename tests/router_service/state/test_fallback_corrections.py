"""ResilientStateStore: a correction goes where the count it corrects was made. A rate grant's
tokens (a client's tpm, a key's) by its lease, a bucket's count (a client's budget) by the place
`add_to_bucket` said it counted: the shared store, or this replica's own state during an outage.
Taken off the other, it counted less than it held (a negative, where nothing was counted)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import CooldownsConfig, KeyConfig
from router_service.keys import KeyLease, KeyPool
from router_service.state import (
    MemoryStateStore,
    RateCount,
    ResilientStateStore,
    SlotRequest,
)
from tests.router_service.state.test_redis_fallback import Flaky


class Counting(Flaky):
    """Flaky's shared store, its windows and buckets unreachable too."""

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        self._check()
        await super().add_tokens(resource, window, delta, requests, lease_id=lease_id)

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        self._check()
        return await super().add_to_bucket(name, bucket, counts, ttl_s, at=at)

    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        self._check()
        return await super().read_buckets(names)


def stores(clock: ManualClock) -> tuple[ResilientStateStore, Counting, MemoryStateStore]:
    shared, local = Counting(clock), MemoryStateStore(clock)
    return ResilientStateStore(shared, local, clock=clock, retry_interval_s=1.0), shared, local


TPM = SlotRequest("k", 60, rpm=5, tpm=1000, tokens=100)


async def test_a_grant_counted_locally_is_corrected_locally() -> None:
    clock = ManualClock(start=600.0)
    store, shared, local = stores(clock)
    await store.acquire(TPM)  # 100 on the shared store
    shared.up = False
    grant = await store.acquire(TPM)  # 100 here
    assert grant.lease_id is not None
    shared.up = True
    clock.advance(1.0)  # back on the shared store
    await store.add_tokens("k", grant.window, -90, lease_id=grant.lease_id)
    assert await shared.rates(["k"]) == [RateCount(1, 100)]  # not 1, 10
    assert await local.rates(["k"]) == [RateCount(1, 10)]


async def test_a_grant_counted_on_the_shared_store_is_not_corrected_locally() -> None:
    clock = ManualClock(start=600.0)
    store, shared, local = stores(clock)
    grant = await store.acquire(TPM)  # 100 on the shared store
    assert grant.lease_id is not None
    shared.up = False
    await store.acquire(TPM)  # 100 here
    await store.add_tokens("k", grant.window, -90, lease_id=grant.lease_id)
    assert await local.rates(["k"]) == [RateCount(1, 100)]  # not 1, 10
    shared.up = True
    assert await shared.rates(["k"]) == [RateCount(1, 100)]  # its estimate stays counted


async def test_a_bucket_count_is_corrected_where_it_was_made() -> None:
    clock = ManualClock(start=600.0)
    store, shared, local = stores(clock)
    there = await store.add_to_bucket("b", 1, {"tokens": 100.0}, 60)
    shared.up = False
    here = await store.add_to_bucket("b", 1, {"tokens": 100.0}, 60)
    assert here != there
    # The shared store's count, corrected in the outage: not here, where it was not counted.
    assert await store.add_to_bucket("b", 1, {"tokens": -90.0}, 60, at=there) == there
    shared.up = True
    clock.advance(1.0)
    # The count made here, corrected once the shared store is back: here, not there.
    assert await store.add_to_bucket("b", 1, {"tokens": -90.0}, 60, at=here) == here
    assert await shared.read_buckets(["b"]) == [{1: {"tokens": 100.0}}]
    assert await local.read_buckets(["b"]) == [{1: {"tokens": 10.0}}]


def key_pool(store: ResilientStateStore, clock: ManualClock) -> KeyPool:
    key = KeyConfig(key=SecretStr("k1"), tpm=1000)
    return KeyPool(
        "p", [key], store=store, clock=clock, cooldowns=CooldownsConfig(), lease_ttl_s=60
    )


async def test_a_keys_lease_taken_in_an_outage_settles_its_tokens_locally() -> None:
    clock = ManualClock(start=600.0)
    store, shared, local = stores(clock)
    pool = key_pool(store, clock)
    before = await pool.lease("m", tokens=100)  # on the shared store
    shared.up = False
    during = await pool.lease("m", tokens=100)  # on this replica's own state
    assert isinstance(before, KeyLease) and isinstance(during, KeyLease)
    await before.settle_tokens(10)  # ends in the outage: its estimate stays on the shared store
    shared.up = True
    clock.advance(1.0)  # back on the shared store
    await during.settle_tokens(10)  # ends after it: corrected here, where it was counted
    name = pool.slot_name(before.key)
    assert await shared.rates([name]) == [RateCount(1, 100)]  # not 1, 10
    assert await local.rates([name]) == [RateCount(1, 10)]  # not 1, 100 (nor 0 once clamped)
