"""What only the Redis store promises: its keys are namespaced and all expire, its decisions are
atomic across replicas, it survives a server that forgot its scripts, and its failures are ours."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from router_service.clock import ManualClock
from router_service.config import StateConfig
from router_service.state import (
    UNHURRIED,
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    SlotRequest,
    StoreUnavailableError,
    open_store,
)
from router_service.state._redis_entries import translated
from router_service.state._resp import RespClient
from tests.helpers import eventually, free_port
from tests.replicas.redis_fixtures import keys_under


async def test_every_key_is_namespaced_and_expires(redis_url: str, redis_prefix: str) -> None:
    clock = ManualClock()
    store = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    try:
        lease = (await store.acquire(SlotRequest("lease:a", 900, 2, rpm=10, tpm=100))).lease_id
        assert lease is not None
        await store.extend_deadline("off:a", clock.now() + 10 * 365 * 86400.0)
        await store.set_value("sticky:s", "alpha/m", 600)
        token = await store.enter("active:alpha", "s", limit=3, ttl_s=900)
        assert token is not None
        await store.add_to_bucket("stats:alpha/m", 1, {"ok": 1}, ttl_s=3600)

        keys = keys_under(redis_url, redis_prefix)
        assert {k.removeprefix(redis_prefix + ":").split(":")[0] for k in keys} == {
            "slot", "rate", "dl", "val", "grp", "grpn", "bkt", "bkti"
        }  # fmt: skip
        assert all(ttl > 0 for ttl in keys.values()), keys
        assert keys[f"{redis_prefix}:slot:lease:a"] <= 901_000
        assert keys[f"{redis_prefix}:rate:lease:a"] <= 121_000 + 1000

        await store.release("lease:a", lease)
        await store.leave("active:alpha", "s", token)
        await store.clear_deadline("off:a")
        left = keys_under(redis_url, redis_prefix)
        assert not any(":slot:" in k or ":grp:" in k or ":dl:" in k for k in left), left
    finally:
        await store.aclose()


async def test_decisions_are_atomic_across_replicas(redis_url: str, redis_prefix: str) -> None:
    replicas = [RedisStateStore.from_url(redis_url, prefix=redis_prefix) for _ in range(3)]
    try:
        grants = await asyncio.gather(
            *(replicas[i % 3].acquire(SlotRequest("k", 60, 5, rpm=7)) for i in range(90))
        )
        won = [g.lease_id for g in grants if g.lease_id is not None]
        assert len(won) == 5 and len(set(won)) == 5
        for lease in won:
            await replicas[0].release("k", lease)
        more = await asyncio.gather(*(r.acquire(SlotRequest("k", 60, 5, rpm=7)) for r in replicas))
        assert sum(g.lease_id is not None for g in more) == 2  # 5 + 2 = the rpm budget of 7

        tokens = await asyncio.gather(
            *(replicas[i % 3].enter("active:p", f"s{i % 10}", limit=4, ttl_s=60) for i in range(60))
        )
        assert len(await replicas[1].members("active:p")) == 4
        assert sum(t is not None for t in tokens) == sum(
            (await replicas[2].members("active:p")).values()
        )
    finally:
        for replica in replicas:
            await replica.aclose()


async def test_scripts_are_reloaded_after_a_flush(redis_url: str, redis_prefix: str) -> None:
    store = RedisStateStore.from_url(redis_url, prefix=redis_prefix)
    try:
        assert (await store.acquire(SlotRequest("k", 60, 1))).lease_id is not None
        await store._client.execute("SCRIPT", "FLUSH")  # what a restarted server forgets
        assert (await store.acquire(SlotRequest("k", 60, 2))).lease_id is not None
    finally:
        await store.aclose()


async def test_unreachable_redis_fails_fast_as_our_error() -> None:
    # A connect timeout no test outlives: the refusal itself must end the call, not the bound
    # (the guard only turns a hang into a failure).
    store = RedisStateStore.from_url(
        f"redis://127.0.0.1:{free_port()}/0", prefix="x", connect_timeout_s=3600
    )
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            async with asyncio.timeout(30):
                await store.acquire(SlotRequest("k", 60, 1))
        assert caught.value.reason == "STATE_UNAVAILABLE"
        with pytest.raises(StoreUnavailableError):
            await store.deadlines(["d"])
    finally:
        await store.aclose()


async def test_open_store_follows_the_config(redis_url: str, redis_prefix: str) -> None:
    memory = await open_store(StateConfig())
    assert isinstance(memory, MemoryStateStore)

    shared = await open_store(
        StateConfig.model_validate({"backend": "redis", "url": redis_url, "prefix": redis_prefix})
    )
    assert isinstance(shared, ResilientStateStore) and not shared.degraded
    assert isinstance(shared.shared, RedisStateStore) and shared.shared.prefix == redis_prefix
    await shared.aclose()

    down = await open_store(
        StateConfig.model_validate(
            {"backend": "redis", "url": f"redis://127.0.0.1:{free_port()}", "prefix": "x"}
        )
    )
    assert isinstance(down, ResilientStateStore) and down.degraded  # starts on local state
    assert (await down.acquire(SlotRequest("k", 60, 1))).lease_id is not None
    await down.aclose()


def test_state_config_checks_the_url() -> None:
    with pytest.raises(ValidationError, match=r"needs state\.url"):
        StateConfig.model_validate({"backend": "redis"})
    with pytest.raises(ValidationError, match="must start with"):
        StateConfig.model_validate({"backend": "redis", "url": "http://127.0.0.1:6379"})
    config = StateConfig.model_validate({"backend": "redis", "url": "redis://:pw@h:6379/0"})
    assert "pw" not in repr(config)


async def test_a_release_waits_for_company_only_after_the_answer(
    redis_url: str, redis_prefix: str
) -> None:
    """Inline (a failover waits for it) a release is one round trip of its own; in the tasks
    that run after the caller's answer (UNHURRIED) it leaves with the next commands."""
    store = RedisStateStore(RespClient(redis_url, lazy_s=3600), prefix=redis_prefix)
    request = SlotRequest("k", 60, max_in_flight=2)
    try:
        first = (await store.acquire(request)).lease_id
        second = (await store.acquire(request)).lease_id
        assert first is not None and second is not None

        await asyncio.wait_for(store.release("k", first), 5)  # no other command needed
        assert await store.held(["k"]) == [1]

        async def after_the_answer() -> None:
            UNHURRIED.set(True)
            await store.release("k", second)

        unhurried = asyncio.create_task(after_the_answer())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not unhurried.done()
        assert await store.held(["k"]) == [0]  # the count went out after the release
        await unhurried
    finally:
        await store.aclose()


async def test_a_slot_without_limits_is_leased_without_waiting_for_redis(
    redis_url: str, redis_prefix: str
) -> None:
    """Nothing to enforce, nothing for Redis to decide: once its deadlines are read (the read
    cache keeps them) a lease writes nothing until other commands leave, and its record still
    reaches the other replicas, ahead of its release."""
    clock = ManualClock()
    here = RedisStateStore(RespClient(redis_url, lazy_s=3600), prefix=redis_prefix, clock=clock)
    there = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    request = SlotRequest("k", 60, unless=("cool:k",))
    try:
        first = await here.acquire(request)  # reads the deadline: one round trip
        connection = await here._client.connection()
        writes = connection.writes
        second = await here.acquire(request)
        assert first.lease_id and second.lease_id and first.lease_id != second.lease_id
        assert first.deadlines == second.deadlines == (0.0,)
        assert connection.writes == writes  # the second lease wrote nothing yet
        assert await there.held(["k"]) == [0]  # the records wait for company (an hour here)

        assert await here.held(["k"]) == [2]  # a command of this replica takes them along
        assert await there.held(["k"]) == [2]
        assert 0 < await _pttl(there, redis_prefix, "slot:k") <= 61_000

        await here.release("k", first.lease_id)  # urgent: written at once, after the records
        assert await there.held(["k"]) == [1]
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_slot_without_limits_is_refused_while_a_deadline_is_in_force(
    redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    here = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    there = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    request = SlotRequest("k", 60, unless=("off:k", "cool:k"))
    try:
        assert (await here.acquire(request)).lease_id is not None  # deadlines now cached
        assert here.cache is not None
        seen, until = here.cache.invalidations, clock.now() + 30
        await there.extend_deadline("cool:k", until)  # another replica cools the key

        async def reported() -> bool:
            return here.cache is not None and here.cache.invalidations > seen

        await eventually(reported, what="Redis's invalidation of cool:k")
        refused = await here.acquire(request)
        assert refused.lease_id is None and refused.deadlines == (0.0, until)
        assert await there.held(["k"]) == [1]  # the refusal recorded nothing
        clock.advance(31)
        assert (await here.acquire(request)).lease_id is not None  # time alone lifts it
    finally:
        await here.aclose()
        await there.aclose()


async def _pttl(store: RedisStateStore, prefix: str, name: str) -> int:
    return int(await store._client.execute("PTTL", f"{prefix}:{name}"))


def test_an_error_without_text_is_named_by_its_kind() -> None:
    """A connect timeout's `TimeoutError()` says nothing: the store's error (and the operator's
    "unreachable (…)" log line) names its kind instead of an empty text."""
    with pytest.raises(StoreUnavailableError) as caught, translated():
        raise TimeoutError()
    assert str(caught.value) == "redis: TimeoutError"
    with pytest.raises(StoreUnavailableError) as refused, translated():
        raise ConnectionRefusedError(111, "Connection refused")
    assert str(refused.value) == "redis: [Errno 111] Connection refused"
