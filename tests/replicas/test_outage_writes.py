"""What a replica writes while Redis is unreachable reaches the other replicas once it answers
again: the writes are queued, then replayed in order (ResilientStateStore's journal)."""

from __future__ import annotations

from typing import Any

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle
from tests.helpers import eventually
from tests.replicas.harness import ask
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_lost_replies import RETRY_S, StartPair, start_pair

__all__ = ["start_pair"]  # the fixture, shared


def as_is(config: dict[str, Any]) -> dict[str, Any]:
    return config


def switches(key: str) -> tuple[admin_pb.SetKeyEnabledRequest, admin_pb.SetKeyEnabledRequest]:
    """An operator's disable and enable of alpha's `key`."""
    fp = fingerprint(key)
    off = admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=fp, enabled=False)
    return off, admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=fp, enabled=True)


async def shown_key(replica: RouterHandle, key_fingerprint: str) -> admin_pb.KeyStatus:
    listed = await replica.admin.ListKeys(admin_pb.ListKeysRequest())
    found: list[admin_pb.KeyStatus] = [k for k in listed.keys if k.fingerprint == key_fingerprint]
    (shown,) = found
    return shown


async def back_on_shared(a: RouterHandle, proxy: RedisProxy, clock: ManualClock) -> None:
    """Redis reachable again for A: one call probes it and A replays what it queued (this one,
    or a task the clock woke, the issued keys' follower, while which this one is served from
    local state)."""
    await proxy.restore()
    clock.advance(RETRY_S)
    await a.stub.Chat(ask())

    async def replayed() -> bool:
        return not a.runtime.store.outage_counts()["degraded"]

    await eventually(replayed, what="A back on shared state, its writes replayed")


async def test_an_operators_disable_during_an_outage_is_told_to_every_replica(
    start_pair: StartPair, redis_proxy: RedisProxy
) -> None:
    # Cut, the proxy refuses at once; A's replies wait on the test's clock (start_pair), so a
    # loaded machine's reconnect after the restore never looks like the outage going on.
    a, b, clock = await start_pair(as_is)
    await redis_proxy.cut()
    k1 = fingerprint("k1")
    disable = admin_pb.SetKeyEnabledRequest(
        provider="alpha", fingerprint=k1, enabled=False, reason="leaked in a log"
    )
    await a.admin.SetKeyEnabled(disable)  # on A's local state, queued for Redis
    assert a.runtime.store.outage_counts()["degraded"]
    await back_on_shared(a, redis_proxy, clock)

    shown = await shown_key(b, k1)
    assert shown.state == admin_pb.KEY_STATE_DISABLED
    # Why and the operator's words too, not the disable alone: B's prober leaves it to them.
    assert (shown.disabled_reason, shown.disabled_note) == ("manual", "leaked in a log")


async def test_an_enable_queued_during_an_outage_lifts_no_disable_made_since(
    start_pair: StartPair, redis_proxy: RedisProxy
) -> None:
    a, b, clock = await start_pair(as_is)
    k1, (off, on) = fingerprint("k1"), switches("k1")
    await b.admin.SetKeyEnabled(off)
    await a.admin.ListKeys(admin_pb.ListKeysRequest())  # A knows of that disable
    await redis_proxy.cut()
    await a.admin.SetKeyEnabled(on)  # on A's local state, queued for Redis
    assert a.runtime.store.outage_counts()["degraded"]
    clock.advance(60.0)
    await b.admin.SetKeyEnabled(off)  # a disable of its own, after A's enable
    await back_on_shared(a, redis_proxy, clock)
    # A's enable was of the disable it knew: replayed late, it does not lift B's newer one.
    for replica in (a, b):
        assert (await shown_key(replica, k1)).state == admin_pb.KEY_STATE_DISABLED


async def test_an_enable_queued_during_an_outage_lifts_the_disable_it_knew(
    start_pair: StartPair, redis_proxy: RedisProxy
) -> None:
    a, b, clock = await start_pair(as_is)
    k1 = fingerprint("k1")
    off = admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=k1, enabled=False)
    await b.admin.SetKeyEnabled(off)
    await a.admin.ListKeys(admin_pb.ListKeysRequest())
    await redis_proxy.cut()
    on = admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=k1, enabled=True)
    await a.admin.SetKeyEnabled(on)
    await redis_proxy.restore()
    clock.advance(RETRY_S)
    await a.stub.Chat(ask())

    async def enabled_on_b() -> bool:
        return bool((await shown_key(b, k1)).state == admin_pb.KEY_STATE_ACTIVE)

    await eventually(enabled_on_b, what="A's queued enable replayed")


async def test_a_disable_queued_during_an_outage_does_not_undo_a_later_enable(
    start_pair: StartPair, redis_proxy: RedisProxy
) -> None:
    a, b, clock = await start_pair(as_is)
    k1, (off, on) = fingerprint("k1"), switches("k1")
    await redis_proxy.cut()
    await a.admin.SetKeyEnabled(off)  # on A's local state, queued for Redis
    assert a.runtime.store.outage_counts()["degraded"]
    clock.advance(60.0)
    await b.admin.SetKeyEnabled(on)  # the operator changes their mind, on B, after A's disable
    await back_on_shared(a, redis_proxy, clock)
    # A's disable was decided before B's enable: replayed late, it does not undo it.
    for replica in (a, b):
        assert (await shown_key(replica, k1)).state == admin_pb.KEY_STATE_ACTIVE


async def test_a_probe_passing_elsewhere_does_not_undo_an_operators_disable_queued_meanwhile(
    start_pair: StartPair, redis_proxy: RedisProxy, fake: FakeUpstream
) -> None:
    a, b, clock = await start_pair(as_is)
    k1, (off, _) = fingerprint("k1"), switches("k1")
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    before = fake.state.count(key="k1")
    while fake.state.count(key="k1") == before:
        await b.stub.Chat(ask())  # B meets k1's 401: k1 is disabled, and B probes it
    fake.state.clear_scenarios()  # k1 works again
    await redis_proxy.cut()
    await a.admin.SetKeyEnabled(off)  # an operator's disable (a leaked key) on A, queued
    clock.advance(b.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # B's probe passes: not an operator's enable
    await back_on_shared(a, redis_proxy, clock)
    # Only an operator enables a key an operator disabled: the probe's clear does not outrank it.
    for replica in (a, b):
        shown = await shown_key(replica, k1)
        assert (shown.state, shown.disabled_reason) == (admin_pb.KEY_STATE_DISABLED, "manual")
