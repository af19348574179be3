"""KeyPool: choosing keys, limits, health per key × model, throttling, the arrival queue."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Collection
from typing import Any

import pytest
from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import CooldownsConfig, KeyConfig, KeyHealthConfig
from router_service.keys import KeyLease, KeyPool, Refusal, Unavailable, fingerprint
from router_service.outcomes import Outcome
from router_service.state import MemoryStateStore, Reading, SlotGrant, SlotRequest
from tests.helpers import advance_until_done, counted_tasks


def make_pool(
    *secrets: str, clock: ManualClock | None = None, **key_fields: object
) -> tuple[KeyPool, ManualClock]:
    clock = clock or ManualClock()
    # The callers pass KeyConfig's own fields, each of its type.
    keys = [KeyConfig(key=SecretStr(s), **key_fields) for s in secrets]  # type: ignore[arg-type]
    pool = KeyPool(
        "p",
        keys,
        store=MemoryStateStore(clock),
        clock=clock,
        cooldowns=CooldownsConfig(),
        health=KeyHealthConfig(half_open_successes=2),
        lease_ttl_s=60,
        rng=random.Random(7),
    )
    return pool, clock


async def take(
    pool: KeyPool, model: str = "m", exclude: Collection[str] = (), *, tokens: int = 0
) -> KeyLease:
    lease = await pool.lease(model, exclude, tokens=tokens)
    assert isinstance(lease, KeyLease), lease
    return lease


async def test_least_in_flight_then_least_recently_used() -> None:
    pool, _ = make_pool("k1", "k2", "k3")
    used = []
    for _ in range(6):
        async with await take(pool) as lease:
            used.append(lease.key.secret)
    assert used == ["k1", "k2", "k3", "k1", "k2", "k3"]
    held = [await take(pool), await take(pool)]
    assert {lease.key.secret for lease in held} == {"k1", "k2"}
    assert (await take(pool)).key.secret == "k3"  # the one with nothing in flight


async def test_weights_share_load() -> None:
    clock = ManualClock()
    keys = [KeyConfig(key=SecretStr("heavy"), weight=3.0), KeyConfig(key=SecretStr("light"))]
    pool = KeyPool(
        "p",
        keys,
        store=MemoryStateStore(clock),
        clock=clock,
        cooldowns=CooldownsConfig(),
        lease_ttl_s=60,
    )
    held = [await take(pool) for _ in range(4)]
    assert sorted(lease.key.secret for lease in held) == ["heavy", "heavy", "heavy", "light"]


async def test_max_in_flight_and_release_on_error() -> None:
    pool, _ = make_pool("k1", max_in_flight=1)
    lease = await take(pool)
    assert await pool.lease("m") == Unavailable(Refusal.AT_LIMIT)
    with pytest.raises(RuntimeError):
        async with lease:
            raise RuntimeError("a bug inside the attempt")
    assert lease.released
    await take(pool)


async def test_rpm_limit_skips_to_another_key() -> None:
    pool, _ = make_pool("k1", "k2", rpm=1)
    first, second = await take(pool), await take(pool)
    assert {first.key.secret, second.key.secret} == {"k1", "k2"}
    refused = await pool.lease("m")
    assert isinstance(refused, Unavailable)
    assert refused.at_limit
    assert (
        refused.retry_after_s is not None and 0 < refused.retry_after_s <= 120
    )  # two windows at most


async def test_rate_limit_cools_key_for_that_model_only() -> None:
    pool, clock = make_pool("k1")
    key = pool.keys[0]
    await pool.report(key, "model-a", Outcome.RATE_LIMITED, retry_after_s=2.0)
    refused = await pool.lease("model-a")
    assert isinstance(refused, Unavailable) and refused.reason is Refusal.UNHEALTHY
    assert refused.retry_after_s == pytest.approx(2.0)
    await (await take(pool, "model-b")).release()
    clock.advance(2.0)
    await take(pool, "model-a")


async def test_backoff_without_hint_grows_and_a_success_resets_it() -> None:
    pool, clock = make_pool("k1")
    key = pool.keys[0]
    waits = []
    for _ in range(4):
        await pool.report(key, "m", Outcome.RATE_LIMITED)
        refused = await pool.lease("m")
        assert isinstance(refused, Unavailable)
        assert refused.retry_after_s is not None
        waits.append(refused.retry_after_s)
        clock.advance(refused.retry_after_s)
    # Exponential from the 5 s base, each with jitter in [0.5, 1.5).
    for n, wait in enumerate(waits):
        assert 0.5 * 5 * 2**n <= wait < 1.5 * 5 * 2**n
    await pool.report(key, "m", Outcome.OK)
    assert pool.health[key.fingerprint].strikes == {}


async def test_a_shorter_cooldown_never_shortens_a_longer_one() -> None:
    pool, _ = make_pool("k1")
    key = pool.keys[0]
    await pool.report(key, "m", Outcome.RATE_LIMITED, retry_after_s=30.0)
    await pool.report(key, "m", Outcome.RATE_LIMITED, retry_after_s=1.0)
    refused = await pool.lease("m")
    assert isinstance(refused, Unavailable)
    assert refused.retry_after_s == pytest.approx(30.0)


async def test_auth_failure_disables_key_for_every_model() -> None:
    pool, _ = make_pool("k1", "k2")
    await pool.report(pool.keys[0], "model-a", Outcome.AUTH_INVALID)
    for model in ("model-a", "model-b", "model-a"):
        lease = await take(pool, model)
        assert lease.key.secret == "k2"
        await lease.release()


async def test_a_denied_model_sets_aside_that_key_for_that_model_only() -> None:
    """A 403 for one model (its terms not accepted, no access) is not the key's fault for the
    others: disabled whole it would pass its model-list probe and fail again on that model."""
    pool, clock = make_pool("k1", "k2")
    await pool.report(pool.keys[0], "model-a", Outcome.MODEL_DENIED)
    for _ in range(3):
        lease = await take(pool, "model-a")
        assert lease.key.secret == "k2"
        await lease.release()
    others = [await take(pool, "model-b"), await take(pool, "model-b")]
    assert {lease.key.secret for lease in others} == {"k1", "k2"}  # k1 serves its other models
    for lease in others:
        await lease.release()
    only_k1 = {pool.keys[1].fingerprint}
    clock.advance(CooldownsConfig().auth_disable_s - 1)
    refused = await pool.lease("model-a", only_k1)
    assert isinstance(refused, Unavailable) and refused.retry_after_s == pytest.approx(1.0)
    clock.advance(1.0)
    assert (await take(pool, "model-a", only_k1)).key.secret == "k1"


async def test_most_keys_throttled_at_once_cools_the_provider_for_that_model() -> None:
    pool, clock = make_pool("k1", "k2", "k3", "k4")
    await pool.report(pool.keys[0], "m", Outcome.RATE_LIMITED, retry_after_s=5.0)
    await (await take(pool)).release()  # one key limited: the others still serve
    await pool.report(pool.keys[1], "m", Outcome.RATE_LIMITED, retry_after_s=5.0)
    refused = await pool.lease("m")  # k3 and k4 are left alone for it too
    assert isinstance(refused, Unavailable) and refused.reason is Refusal.UNHEALTHY
    await (await take(pool, "other-model")).release()  # its own limit: not reached
    clock.advance(5.0)
    await take(pool, "m")


async def test_keys_limited_for_different_models_throttle_no_model() -> None:
    pool, _ = make_pool("k1", "k2", "k3")
    await pool.report(pool.keys[0], "m", Outcome.RATE_LIMITED, retry_after_s=5.0)
    await pool.report(pool.keys[1], "n", Outcome.RATE_LIMITED, retry_after_s=5.0)
    assert (await take(pool, "m", exclude={pool.keys[2].fingerprint})).key.secret == "k2"
    assert (await take(pool, "n", exclude={pool.keys[2].fingerprint})).key.secret == "k1"


async def test_exclude_walks_each_key_once() -> None:
    pool, _ = make_pool("k1", "k2")
    first = await take(pool)
    second = await take(pool, exclude={first.key.fingerprint})
    assert second.key is not first.key
    assert await pool.lease("m", exclude={k.fingerprint for k in pool.keys}) == Unavailable(
        Refusal.EXHAUSTED
    )


async def test_waiters_are_served_in_arrival_order_and_time_out() -> None:
    pool, clock = make_pool("k1", max_in_flight=1)
    holder = await take(pool)
    order: list[int] = []

    async def wait(n: int) -> None:
        lease = await pool.lease_or_wait("m", wait_s=5.0)
        assert isinstance(lease, KeyLease)
        order.append(n)
        await lease.release()

    waiters = []
    for n in range(3):
        waiters.append(asyncio.create_task(wait(n)))
        await asyncio.sleep(0)  # let it join the queue before the next arrives
    await holder.release()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]

    holder = await take(pool)
    waiting = asyncio.ensure_future(pool.lease_or_wait("m", wait_s=5.0))
    # Its wait ends on the pool's clock (not the loop's): once the test moves it 5 s on.
    await advance_until_done(clock, 1.0, waiting, what="the waiter timed out")
    refused = await waiting
    assert isinstance(refused, Unavailable) and refused.at_limit
    await holder.release()


async def test_half_open_key_serves_one_request_at_a_time() -> None:
    pool, _ = make_pool("k1")
    key = pool.keys[0]
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    await pool.recovered(key)
    lease = await take(pool)
    assert (await pool.lease("m")) == Unavailable(Refusal.AT_LIMIT)
    await pool.report(key, "m", Outcome.OK)
    await lease.release()
    await pool.report(key, "m", Outcome.OK)  # second success: trusted again
    assert not pool.health[key.fingerprint].half_open
    both = [await take(pool), await take(pool)]
    assert len(both) == 2


async def test_admin_disable_enable_and_snapshot_shows_no_secret() -> None:
    pool, _ = make_pool("sk-very-secret")
    key = pool.keys[0]
    assert key.fingerprint == fingerprint("sk-very-secret")
    await pool.set_enabled(key, False)
    assert isinstance(await pool.lease("m"), Unavailable)
    snapshot = await pool.snapshot()
    assert snapshot[0].disabled_until > 0
    assert snapshot[0].disabled_reason == "manual"
    assert "sk-very-secret" not in repr(snapshot) and "sk-very-secret" not in str(key)
    await pool.set_enabled(key, True)
    await take(pool)


async def test_token_estimate_is_corrected_by_usage() -> None:
    pool, _ = make_pool("k1", tpm=1000)
    lease = await take(pool, tokens=900)
    assert isinstance(await pool.lease("m", tokens=500), Unavailable)
    await lease.settle_tokens(100)
    await lease.release()
    await take(pool, tokens=500)


async def test_a_negative_usage_leaves_the_estimate_counted() -> None:
    # A buggy upstream's negative report would give the key's tpm window tokens back.
    pool, _ = make_pool("k1", tpm=1000)
    lease = await take(pool, tokens=600)
    await lease.settle_tokens(-5000)
    await lease.release()
    assert isinstance(await pool.lease("m", tokens=500), Unavailable)


class CountingStore(MemoryStateStore):
    """Counts the store calls a lease makes (each is one Redis round trip)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.calls: list[str] = []

    async def read(self, **kwargs: Any) -> Reading:
        self.calls.append("read" if not kwargs.get("held") else "read+held")
        return await super().read(**kwargs)

    async def acquire(self, request: SlotRequest) -> SlotGrant:
        self.calls.append("acquire")
        return await super().acquire(request)


def counting_pool(*secrets: str) -> tuple[KeyPool, CountingStore]:
    pool, clock = make_pool(*secrets)
    store = pool.store = CountingStore(clock)
    return pool, store


async def test_a_lone_candidate_is_checked_and_leased_in_one_store_call() -> None:
    pool, store = counting_pool("k1")
    await (await take(pool)).release()
    assert store.calls == ["acquire"]

    await pool.report(pool.keys[0], "m", Outcome.AUTH_INVALID)  # disabled for every model
    store.calls.clear()
    refused = await pool.lease("m")
    assert refused == Unavailable(Refusal.DISABLED, CooldownsConfig().auth_disable_s)
    assert store.calls == ["acquire"]
    assert await store.held([pool.slot_name(pool.keys[0])]) == [0]  # nothing was taken

    several, store = counting_pool("k1", "k2")
    await (await take(several)).release()
    assert store.calls == ["read", "acquire"]  # their health, to order them


async def test_keys_with_limits_are_ordered_by_everyones_leases_the_others_by_ours() -> None:
    """Nothing of an unlimited key's is enforced: its health is read without in-flight counts
    (on Redis, from the read cache) and the order follows this process's leases, whatever
    another replica holds. With limits the shared counts decide, to spare refused leases."""
    for limit, expected in ((None, ["k1", "k2"]), (8, ["k2", "k2"])):
        pool, clock = make_pool("k1", "k2", max_in_flight=limit)
        store = pool.store = CountingStore(clock)
        first = pool.slot_name(pool.keys[0])
        for _ in range(2):  # another replica's leases on k1
            assert (await store.acquire(SlotRequest(first, 60, limit))).lease_id is not None
        store.calls.clear()
        assert [(await take(pool)).key.secret for _ in expected] == expected
        read = "read" if limit is None else "read+held"
        assert store.calls == [read, "acquire"] * 2


async def test_a_throttled_provider_refuses_its_last_candidate_too() -> None:
    pool, clock = make_pool("k1", "k2", "k3")
    for key in pool.keys[:2]:
        await pool.report(key, "m", Outcome.RATE_LIMITED, retry_after_s=4.0)
    last = [k.fingerprint for k in pool.keys[:2]]
    refused = await pool.lease("m", exclude=last)  # only k3 left, and the provider cools
    assert refused == Unavailable(Refusal.UNHEALTHY, 4.0)
    clock.advance(4.0)
    assert (await take(pool, "m", exclude=last)).key.secret == "k3"


class SuspendingStore(MemoryStateStore):
    """A store whose release suspends, as a shared store's round trip does."""

    completes_without_waiting = False

    async def release(self, resource: str, lease_id: str) -> None:
        await asyncio.sleep(0)
        await super().release(resource, lease_id)


@pytest.mark.parametrize("suspends", [False, True], ids=["in-memory", "suspending"])
async def test_a_lease_goes_back_with_a_cancellation_pending(suspends: bool) -> None:
    pool, clock = make_pool("k1", max_in_flight=1)
    if suspends:
        pool.store = SuspendingStore(clock)
    lease = await take(pool)
    slot = pool.slot_name(lease.key)
    seen: list[list[int]] = []

    async def holder() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]  # as a caller goes away
        try:
            await lease.release()
        finally:
            seen.append(await pool.store.held([slot]))

    with counted_tasks() as made:
        task = asyncio.create_task(holder())
        with pytest.raises(asyncio.CancelledError):
            await task
        # A shielded release goes on in a task of its own: let everything still running finish.
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t is not asyncio.current_task()))
    assert await pool.store.held([slot]) == [0]  # never leaked
    assert seen == ([[1]] if suspends else [[0]])
    # In memory nothing can interrupt the release: it runs in the caller's task, unshielded.
    assert made == [holder.__qualname__, *(["KeyPool._release"] if suspends else [])]


async def test_a_disable_is_logged_once_by_fingerprint(caplog: pytest.LogCaptureFixture) -> None:
    """One line per disable (not per failed call of a storm), with the key's fingerprint, the
    reason and the window; again after the key came back and failed anew. Never the key."""
    pool, _ = make_pool("sk-secret-one", "sk-secret-two")
    key = pool.keys[0]
    with caplog.at_level(logging.WARNING, logger="switchboard.keys"):
        for _ in range(3):  # calls that held the key when it failed report one after another
            await pool.report(key, "m", Outcome.AUTH_INVALID)
        await pool.recovered(key)
        await pool.report(key, "m", Outcome.QUOTA_EXHAUSTED)
    lines = [r.getMessage() for r in caplog.records if "disabled" in r.getMessage()]
    window, probe_s = CooldownsConfig(), KeyHealthConfig().probe_initial_s
    assert lines == [
        f"key p:{fingerprint('sk-secret-one')} disabled (auth) for up to "
        f"{window.auth_disable_s:g}s; probed again in {probe_s:g}s",
        # Failed again while recovering: the next probe waits twice as long.
        f"key p:{fingerprint('sk-secret-one')} disabled (quota) for up to "
        f"{window.quota_disable_s:g}s; probed again in {2 * probe_s:g}s",
    ]
    assert "sk-secret" not in caplog.text
