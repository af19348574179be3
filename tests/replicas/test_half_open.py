"""A key's half-open recovery across replicas on one Redis: once its calls proved it on one
replica, every replica trusts it (at its prober's next look), and nothing else is undone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import DisableReason, fingerprint
from router_service.state import Reading
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import ask, replica_config, set_enabled, two_replicas


async def _half_open_on_both(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    clock: ManualClock | None = None,
    **sections: Any,
) -> tuple[RouterHandle, RouterHandle]:
    """Two replicas with k1 alone, its credentials refused on b, then b's probe passed: k1 is
    half-open on b, and on a from a's look after (each looks when the test says, only)."""
    config = replica_config(fake.base_url, redis_url, redis_prefix, **sections)
    config["providers"]["alpha"].update(keys=["k1"], queue_timeout_s=0)
    config["key_health"] = {"probe_interval_s": 3600, "half_open_successes": 1}
    clock = clock or ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask())
    await a.runtime.prober.tick()  # a adopts k1's disable
    fake.state.clear_scenarios()
    clock.advance(b.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # passed: half-open on b
    await a.runtime.prober.tick()
    return a, b


async def test_a_key_proved_on_one_replica_is_trusted_on_the_others_too(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """k1 half-open on both; b's call proves it (b trusts it: as many calls at once as its
    limits allow). From a's next look on, a trusts it too, not half-open for ever: the slot's
    limit of 1 is shared, so a's calls were refused whenever b had one in flight."""
    a, b = await _half_open_on_both(fake, start_router, redis_url, redis_prefix)
    await b.stub.Chat(ask())  # proved on b
    await a.runtime.prober.tick()

    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    first = b.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    try:
        assert (await anext(aiter(first))).route.deployment == "alpha/model-a"
        second = a.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))  # beside it
        assert (await anext(aiter(second))).route.deployment == "alpha/model-a"
    finally:
        fake.state.release()
    assert [chunk async for chunk in first] and [chunk async for chunk in second]
    assert not (await a.runtime.pools["alpha"].snapshot())[0].half_open


async def test_a_key_proved_after_its_disables_window_is_trusted_on_the_others_too(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """k1's credentials disable lasts 60 s; b's probe passes at 45 s (half-open on both), and
    b's call proves it at 65 s, once the disable's why is gone with its window. a trusts the
    key from its next look all the same: a proof needs its disable over, not its why alive."""
    clock = ManualClock(time.time())
    a, b = await _half_open_on_both(
        fake, start_router, redis_url, redis_prefix, clock, cooldowns={"auth_disable_s": 60}
    )
    assert (await a.runtime.pools["alpha"].snapshot())[0].half_open
    clock.advance(20)  # past the disable's window: its why expired
    await b.stub.Chat(ask())  # proved on b
    await a.runtime.prober.tick()
    assert not (await a.runtime.pools["alpha"].snapshot())[0].half_open


async def test_a_half_open_call_ending_well_leaves_an_operators_disable_meanwhile_theirs(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """k1 half-open on both; b's call is in flight when the operator disables k1 through a.
    The call ending well proves the key on b, but the disable stays the operator's: its why
    is not overwritten, and every replica shows it as theirs."""
    a, b = await _half_open_on_both(fake, start_router, redis_url, redis_prefix)
    fake.state.hold()
    first = asyncio.ensure_future(b.stub.Chat(ask()))
    try:
        await fake.state.wait_for(lambda: fake.state.held == 1, what="b's call at the upstream")
        await set_enabled(a, "k1", False)
    finally:
        fake.state.release()
    assert (await first).route.deployment == "alpha/model-a"
    await a.runtime.prober.tick()
    for replica in (a, b):
        listed = await replica.admin.ListKeys(admin_pb.ListKeysRequest())
        (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
        assert k1.disabled_reason == "manual"


async def test_a_half_open_call_ending_well_leaves_a_new_disable_meanwhile_in_force(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """k1 half-open on b (a never looked); b's call is in flight when a's is refused (a new
    disable, credentials). The call ending well proves the key on b, but not over a's
    disable: its why stays, so that b adopts and probes it (nothing else lifts it)."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(keys=["k1"], queue_timeout_s=0)
    config["key_health"] = {"probe_interval_s": 3600, "half_open_successes": 1}
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask())
    fake.state.clear_scenarios()
    clock.advance(b.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # passed: half-open on b, a trusts it all along

    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=0))  # a's call not held
    first = b.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    try:  # b's call under way, before its first chunk (its success not told yet)
        await fake.state.wait_for(lambda: fake.state.held == 1, what="b's call at the upstream")
        fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
        with pytest.raises(grpc.aio.AioRpcError):
            await a.stub.Chat(ask())  # refused again: disabled by a
    finally:
        fake.state.release()
    assert [chunk async for chunk in first]
    await b.runtime.prober.tick()
    listed = await b.admin.ListKeys(admin_pb.ListKeysRequest())
    (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
    assert k1.disabled_reason == "auth"
    assert b.runtime.pools["alpha"].health[fingerprint("k1")].disabled is DisableReason.AUTH


def _between_proofs_read_and_write(
    replica: RouterHandle, meanwhile: Callable[[], Awaitable[None]]
) -> None:
    """`meanwhile` runs once, on another replica, as `replica` tells k1's proof (`proved`):
    once it has read k1's why, or as its write goes out: the other replica's decision lands
    between the proof's read and its write, as it may on a shared store (a round trip)."""
    pool = replica.runtime.pools["alpha"]
    (key,) = pool.keys
    store, read, set_value_if = pool.store, pool.store.read, pool.store.set_value_if
    armed = [True]

    async def once() -> None:
        if armed[0]:
            armed[0] = False
            await meanwhile()

    async def read_then_meanwhile(**asked: Any) -> Reading:
        found = await read(**asked)
        if list(asked.get("values", ())) == [pool.why_name(key)] and asked.get("deadlines"):
            await once()
        return found

    async def meanwhile_then_set(name: str, value: str, ttl_s: float, **only: Any) -> bool:
        if name == pool.why_name(key):
            await once()
        return await set_value_if(name, value, ttl_s, **only)

    store.read = read_then_meanwhile  # type: ignore[method-assign]
    store.set_value_if = meanwhile_then_set  # type: ignore[method-assign]


async def test_an_operators_disable_landing_while_a_proof_is_told_stays_theirs(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """k1 half-open on both; b's call proves it, and the operator disables k1 through a just
    after b read k1's why, before b wrote that it was proved. The disable stays the
    operator's (its why not overwritten by 'proved'): every replica shows it as theirs."""
    a, b = await _half_open_on_both(fake, start_router, redis_url, redis_prefix)
    _between_proofs_read_and_write(b, lambda: set_enabled(a, "k1", False))
    assert (await b.stub.Chat(ask())).route.deployment == "alpha/model-a"
    for replica in (a, b):
        await replica.runtime.prober.tick()
        listed = await replica.admin.ListKeys(admin_pb.ListKeysRequest())
        (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
        assert k1.disabled_reason == "manual"


async def test_a_disable_landing_while_a_proof_is_told_is_probed_and_recovered_half_open(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """k1 half-open on b (a never looked); b's call proves it, and a's call is refused (a new
    disable, credentials) just after b read k1's why, before b wrote that it was proved. The
    new disable's why stands: b adopts and probes it, and once a's probe passes, b takes the
    key half-open (not trusted on the strength of the proof that came before the disable)."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(keys=["k1"], queue_timeout_s=0)
    config["key_health"] = {"probe_interval_s": 3600, "half_open_successes": 1}
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask())
    fake.state.clear_scenarios()
    clock.advance(b.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # passed: half-open on b, a trusts it all along

    async def refused_on_a() -> None:
        fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
        with pytest.raises(grpc.aio.AioRpcError):
            await a.stub.Chat(ask())
        fake.state.clear_scenarios()

    _between_proofs_read_and_write(b, refused_on_a)
    assert (await b.stub.Chat(ask())).route.deployment == "alpha/model-a"
    await b.runtime.prober.tick()
    listed = await b.admin.ListKeys(admin_pb.ListKeysRequest())
    (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
    assert k1.disabled_reason == "auth"
    assert b.runtime.pools["alpha"].health[fingerprint("k1")].disabled is DisableReason.AUTH
    clock.advance(a.runtime.config.key_health.probe_initial_s * 1.5)
    assert await a.runtime.prober.tick() == 1  # a's probe passed: the disable lifted
    await b.runtime.prober.tick()
    assert (await b.runtime.pools["alpha"].snapshot())[0].half_open
