"""KeyProber: disabled keys come back half-open, then fully; failing keys back off to a ceiling."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import CooldownsConfig, KeyConfig, KeyHealthConfig
from router_service.errors import UpstreamFailure
from router_service.keys import (
    DisableReason,
    KeyLease,
    KeyPool,
    KeyProber,
    Unavailable,
    UpstreamKey,
)
from router_service.outcomes import Outcome
from router_service.state import MemoryStateStore

HEALTH = KeyHealthConfig(
    probe_initial_s=10.0, probe_max_s=80.0, half_open_successes=2, probe_concurrency=2
)


class ScriptedProbe:
    """A probe whose answers the test decides: True passes, an Outcome fails with it."""

    def __init__(self) -> None:
        self.answers: list[bool | Outcome] = []
        self.calls: list[str] = []

    async def __call__(self, key: UpstreamKey) -> None:
        self.calls.append(key.fingerprint)
        answer = self.answers.pop(0)
        if answer is not True:
            assert isinstance(answer, Outcome)
            raise UpstreamFailure(answer, "probe failed")


def setup() -> tuple[KeyPool, KeyProber, ScriptedProbe, ManualClock]:
    clock = ManualClock()
    pool = KeyPool(
        "p",
        [KeyConfig(key=SecretStr("k1"))],
        store=MemoryStateStore(clock),
        clock=clock,
        cooldowns=CooldownsConfig(),
        health=HEALTH,
        lease_ttl_s=60,
    )
    probe = ScriptedProbe()
    prober = KeyProber({"p": pool}, {"p": probe}, clock=clock, config=HEALTH, rng=random.Random(1))
    return pool, prober, probe, clock


def another_replica(
    pool: KeyPool, probe: ScriptedProbe, clock: ManualClock
) -> tuple[KeyPool, KeyProber]:
    """The same pool and prober on a replica sharing `pool`'s store."""
    other = KeyPool(
        "p",
        [KeyConfig(key=SecretStr("k1"))],
        store=pool.store,
        clock=clock,
        cooldowns=CooldownsConfig(),
        health=HEALTH,
        lease_ttl_s=60,
    )
    return other, KeyProber({"p": other}, {"p": probe}, clock=clock, config=HEALTH)


async def test_recovered_key_is_half_open_then_trusted() -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    assert await prober.tick() == 0  # not due before its first backoff
    clock.advance(10.0)
    probe.answers = [True]
    assert await prober.tick() == 1
    health = pool.health[key.fingerprint]
    assert health.disabled is DisableReason.NONE and health.half_open
    for _ in range(2):
        lease = await pool.lease("m")
        assert isinstance(lease, KeyLease)
        await pool.report(key, "m", Outcome.OK)
        await lease.release()
    assert not health.half_open


async def test_failing_key_backs_off_longer_each_time_up_to_a_ceiling() -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    health = pool.health[key.fingerprint]
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    backoffs = []
    for _ in range(5):
        clock.advance(health.next_probe_at - clock.now())
        probe.answers = [Outcome.AUTH_INVALID]
        assert await prober.tick() == 1
        assert await prober.tick() == 0  # never again at once: no tight loop
        backoffs.append(health.probe_backoff_s)
    assert backoffs == [20.0, 40.0, 80.0, 80.0, 80.0]
    assert health.reported
    assert len(probe.calls) == 5


async def test_failure_while_half_open_doubles_the_backoff() -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    health = pool.health[key.fingerprint]
    await pool.report(key, "m", Outcome.QUOTA_EXHAUSTED)
    clock.advance(10.0)
    probe.answers = [True]
    await prober.tick()
    assert health.half_open
    await pool.report(key, "m", Outcome.QUOTA_EXHAUSTED)  # the first real request fails
    assert health.disabled is DisableReason.QUOTA
    assert health.probe_backoff_s == 20.0
    assert health.next_probe_at == clock.now() + 20.0


async def test_inconclusive_probe_keeps_the_backoff() -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    health = pool.health[key.fingerprint]
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    clock.advance(10.0)
    probe.answers = [Outcome.CONNECT_FAILED]
    await prober.tick()
    assert health.probe_backoff_s == 10.0
    assert health.disabled is DisableReason.AUTH


async def test_prober_task_is_owned_and_stops() -> None:
    _, prober, _, _ = setup()
    prober.start()
    await prober.shutdown()
    await prober.shutdown()  # idempotent


async def test_a_key_failing_after_an_operators_disable_stays_the_operators() -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    other, others = another_replica(pool, probe, clock)  # with a request of its own on the key
    mine, theirs = await pool.lease("m"), await other.lease("m")
    assert isinstance(mine, KeyLease) and isinstance(theirs, KeyLease)
    await pool.set_enabled(key, False, note="leaked in a log", by="ops")
    # The requests in flight then fail on the key: out of quota here, refused there.
    await pool.report(key, "m", Outcome.QUOTA_EXHAUSTED)
    await other.report(key, "m", Outcome.AUTH_INVALID)
    await mine.release()
    await theirs.release()
    clock.advance(HEALTH.probe_max_s)
    probe.answers = [True, True]
    assert await prober.tick() + await others.tick() == 0  # nothing probes it back
    assert isinstance(await pool.lease("m"), Unavailable)
    (shown,) = await pool.snapshot()
    assert (shown.disabled_reason, shown.disabled_note) == ("manual", "leaked in a log")


async def test_a_replica_probing_a_key_leaves_it_once_an_operator_takes_it_over() -> None:
    pool, _, probe, clock = setup()
    key = pool.keys[0]
    other, others = another_replica(pool, probe, clock)
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    assert await others.tick() == 0  # it probes the key too, in its time
    assert other.health[key.fingerprint].disabled is DisableReason.AUTH
    # An operator enables the key on the first replica, then disables it by hand.
    await pool.set_enabled(key, True)
    await pool.set_enabled(key, False, note="rotating it", by="ops")
    clock.advance(HEALTH.probe_max_s)
    probe.answers = [True]
    assert await others.tick() == 0  # not probed back into service
    assert other.health[key.fingerprint].disabled is DisableReason.NONE
    (shown,) = await other.snapshot()
    assert (shown.disabled_reason, shown.disabled_note) == ("manual", "rotating it")
    # Enabled by the operator: nothing left to probe, no half-open on the other replica.
    await pool.set_enabled(key, True)
    assert await others.tick() == 0 and not other.health[key.fingerprint].half_open


async def test_an_operators_disable_during_a_probe_outlasts_the_probe() -> None:
    pool, _, _, clock = setup()
    key = pool.keys[0]

    async def probe(probed: UpstreamKey) -> None:  # passes, as the operator steps in
        await pool.set_enabled(probed, False, note="revoked", by="ops")

    prober = KeyProber({"p": pool}, {"p": probe}, clock=clock, config=HEALTH)
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    clock.advance(HEALTH.probe_initial_s)
    assert await prober.tick() == 1
    assert isinstance(await pool.lease("m"), Unavailable)
    assert not pool.health[key.fingerprint].half_open
    assert (await pool.snapshot())[0].disabled_reason == "manual"


async def test_a_key_whose_why_the_store_lost_is_still_probed_by_its_disabler() -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    # The why is gone, the disable not (a long Redis outage's bounded journal dropped it).
    await pool.store.set_value(pool.why_name(key), "auth", 0.001)
    clock.advance(HEALTH.probe_initial_s)
    probe.answers = [True]
    assert await prober.tick() == 1
    assert isinstance(await pool.lease("m"), KeyLease)  # back, half-open


async def test_why_a_key_is_off_lasts_as_long_as_its_disable() -> None:
    pool, _, probe, clock = setup()
    key = pool.keys[0]
    await pool.report(key, "m", Outcome.AUTH_INVALID)  # off for a day
    await pool.report(key, "m", Outcome.QUOTA_EXHAUSTED)  # a call in flight then: an hour
    clock.advance(CooldownsConfig().quota_disable_s + 1)
    # Still off for most of the day; the replica that disabled it is gone (restarted): another
    # one learns why from the store, and probes it back rather than wait for the day's end.
    other, others = another_replica(pool, probe, clock)
    await others.tick()
    assert other.health[key.fingerprint].disabled in (DisableReason.AUTH, DisableReason.QUOTA)
    (shown,) = await other.snapshot()
    assert shown.disabled_reason in ("auth", "quota")


async def test_a_key_enabled_on_another_replica_is_told_disabled_again_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    other, _ = another_replica(pool, probe, clock)
    await pool.set_enabled(key, False, note="rotating", by="ops")
    await other.set_enabled(key, True)  # the operator, through another replica
    await prober.tick()  # this replica learns it is enabled
    with caplog.at_level(logging.WARNING, logger="switchboard.keys"):
        await pool.report(key, "m", Outcome.AUTH_INVALID)  # then its credentials fail here
    assert "disabled (auth)" in caplog.text  # an operator hears of it, as of any disable


async def test_a_probe_that_raises_unexpectedly_neither_stops_the_prober_nor_hammers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    pool = KeyPool(
        "p",
        [KeyConfig(key=SecretStr("k1")), KeyConfig(key=SecretStr("k2"))],
        store=MemoryStateStore(clock),
        clock=clock,
        cooldowns=CooldownsConfig(),
        health=HEALTH,
        lease_ttl_s=60,
    )
    broken, fine = pool.keys
    calls: list[str] = []

    async def probe(key: UpstreamKey) -> None:  # a bug in one probe (a body it cannot read)
        calls.append(key.fingerprint)
        if key is broken:
            raise ValueError(f"unreadable model list at /models?key={key.secret}")

    prober = KeyProber({"p": pool}, {"p": probe}, clock=clock, config=HEALTH, rng=random.Random(1))
    await pool.report(broken, "m", Outcome.AUTH_INVALID)
    await pool.report(fine, "m", Outcome.AUTH_INVALID)
    clock.advance(HEALTH.probe_initial_s)
    with caplog.at_level(logging.ERROR, logger="switchboard.keys"):
        assert await prober.tick() == 2  # the other key's probe is not cut short by it
    assert f"probing key {broken} failed: ValueError" in caplog.text
    assert "k1" not in caplog.text  # its secret, quoted by the error, is not logged
    assert pool.health[fine.fingerprint].half_open  # it passed and came back
    assert pool.health[broken.fingerprint].disabled is DisableReason.AUTH
    assert await prober.tick() == 0  # backed off, not probed again at once
    assert calls.count(broken.fingerprint) == 1


async def test_the_prober_goes_on_after_a_look_that_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    looks = 0
    read = pool.store.read

    async def flaky_read(**kwargs: Any) -> Any:  # the store refuses one look (a bug, a script)
        nonlocal looks
        looks += 1
        if looks == 1:
            raise RuntimeError("refused")
        return await read(**kwargs)

    await pool.report(key, "m", Outcome.AUTH_INVALID)
    pool.store.read = flaky_read  # type: ignore[method-assign]
    clock.advance(HEALTH.probe_initial_s)
    probe.answers = [True]
    with caplog.at_level(logging.ERROR, logger="switchboard.keys"):
        await prober.look()
    assert "probing keys failed" in caplog.text
    await prober.look()
    assert pool.health[key.fingerprint].half_open


async def test_an_operators_enable_elsewhere_ends_half_open_here_with_a_fresh_backoff() -> None:
    # Probes failed to the ceiling here, then one passed (half-open); the operator enables the
    # key through another replica. Here, as there and as after half-open's own end: its next
    # disable is probed after the first backoff, not the ceiling's (left from the old failures).
    pool, prober, probe, clock = setup()
    key = pool.keys[0]
    health = pool.health[key.fingerprint]
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    probe.answers = [Outcome.AUTH_INVALID] * 3 + [True]
    for _ in range(4):
        clock.advance(health.next_probe_at - clock.now())
        assert await prober.tick() == 1
    assert health.half_open and health.reported
    other, _ = another_replica(pool, probe, clock)
    await other.set_enabled(key, True)
    await prober.tick()
    assert not health.half_open
    assert (health.probe_backoff_s, health.probe_failures, health.reported) == (0.0, 0, False)
    await pool.report(key, "m", Outcome.AUTH_INVALID)
    assert health.next_probe_at == clock.now() + HEALTH.probe_initial_s
