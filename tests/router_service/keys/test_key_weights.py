"""Key weights share the calls among usable keys, with calls in flight or without."""

from __future__ import annotations

from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import CooldownsConfig, KeyConfig
from router_service.keys import KeyPool
from router_service.state import MemoryStateStore
from tests.router_service.keys.test_pool import take


def pool_of(keys: list[KeyConfig], clock: ManualClock) -> KeyPool:
    return KeyPool(
        "p",
        keys,
        store=MemoryStateStore(clock),
        clock=clock,
        cooldowns=CooldownsConfig(),
        lease_ttl_s=60,
    )


async def test_weights_share_calls_made_one_after_another() -> None:
    # Nothing in flight at each lease: the weights still decide (least recently used alone
    # took the keys in turn, 1:1 whatever their weights).
    clock = ManualClock()
    keys = [
        KeyConfig(key=SecretStr("heavy"), weight=3.0, max_in_flight=8),
        KeyConfig(key=SecretStr("light")),
        KeyConfig(key=SecretStr("spare")),
    ]
    pool = pool_of(keys, clock)
    used: list[str] = []
    for _ in range(50):
        async with await take(pool) as lease:
            used.append(lease.key.secret)
    assert [used[i : i + 5].count("heavy") for i in range(0, 50, 5)] == [3] * 10
    assert used.count("light") == used.count("spare") == 10


async def test_a_key_busy_for_long_catches_up_by_one_round_at_most() -> None:
    # One key holds a long call while the other serves many short ones in turn: once both are
    # free, the weights share the calls again at once (its debt for those calls, unbounded,
    # gave the long call's key every call until the other had paid it off).
    clock = ManualClock()
    pool = pool_of([KeyConfig(key=SecretStr("one")), KeyConfig(key=SecretStr("two"))], clock)
    long_call = await take(pool)
    busy = "two" if long_call.key.secret == "one" else "one"
    for _ in range(40):
        async with await take(pool) as lease:
            assert lease.key.secret == busy  # the other is in flight
    await long_call.release()
    used: list[str] = []
    for _ in range(10):
        async with await take(pool) as lease:
            used.append(lease.key.secret)
    assert used.count(busy) >= 4  # 1:1 again, give or take a round


async def test_a_failover_lease_counts_in_the_share() -> None:
    # A call leases one key, fails over to the other (the first excluded: its lease alone), and
    # the next call finds both free: the first key is behind its share and serves it (the
    # failover's lease, left uncounted, made the key that served two calls look behind).
    clock = ManualClock()
    pool = pool_of([KeyConfig(key=SecretStr("one")), KeyConfig(key=SecretStr("two"))], clock)
    async with await take(pool) as failed:
        first = failed.key
    async with await take(pool, exclude=[first.fingerprint]) as failover:
        assert failover.key != first
    async with await take(pool, exclude=[first.fingerprint]) as again:  # the first still out
        assert again.key == failover.key
    async with await take(pool) as lease:
        assert lease.key == first


async def test_a_key_out_of_rotation_leaves_the_others_their_weights_share() -> None:
    # One key disabled, the other two share the calls 3:1 as their weights say (crediting the
    # disabled key too, its credit stuck at its cap, drove the others' down to their floor,
    # where each lease clamped: 2:1).
    clock = ManualClock()
    keys = [
        KeyConfig(key=SecretStr("heavy"), weight=3.0),
        KeyConfig(key=SecretStr("light")),
        KeyConfig(key=SecretStr("spare")),
    ]
    pool = pool_of(keys, clock)
    await pool.set_enabled(pool.keys[2], False)
    used: list[str] = []
    for _ in range(40):
        async with await take(pool) as lease:
            used.append(lease.key.secret)
    assert [used[i : i + 4].count("heavy") for i in range(0, 40, 4)] == [3] * 10
