"""A provider renamed by a reload, its settings alike (`keys.take_over`, `_reload.carried_over`):
its keys' calls in flight and this minute's calls count under the new name as under a kept one
(`keys.carry_slots`), the store's state is in place before the new config serves, and a rename
back (A -> B -> A) takes what the keys met under B, not what A had before."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import KeyLease, Unavailable, fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.processes import params, read_events
from tests.router_service.server.test_reload_carry_over import _one_alpha_key, renamed
from tests.router_service.server.test_reload_renamed import _solo_refused as _refused

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


def _limited(fake_url: str, state: dict[str, Any], **limits: int) -> dict[str, Any]:
    """`solo` on alpha's one key, under `limits` (`max_in_flight`, `rpm`), no wait for it."""
    config = {**_one_alpha_key(fake_url), "state": state}
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", **limits}]
    return config


async def test_a_call_in_flight_counts_against_the_renamed_keys_limit(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """`max_in_flight: 1`: the stream under way across the rename holds the key's one slot
    under its new name (a second call is refused), and gives it back there when it ends."""
    config = _limited(fake.base_url, state_section, max_in_flight=1)
    router = await start_router(config, clock=ManualClock(time.time()))
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    under_way = router.stub.ChatStream(pb.ChatStreamRequest(params=params("solo")))
    try:
        assert (await anext(aiter(under_way))).route.deployment == "alpha/model-a"
        await router.server.reload(renamed(config, "renamed"))

        assert await router.leases_held(settled=False) == 1  # the new name's count
        assert await _refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        fake.state.release()
    assert (await read_events(under_way))[-1] == "summary"
    assert await router.leases_held() == 0  # released where it was counted
    fake.state.clear_scenarios()
    reply = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert reply.route.deployment == "renamed/model-a"


async def test_this_minutes_calls_count_against_the_renamed_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """`rpm: 2`, both used before the rename: the third call, after it, waits for the minute
    as it would under the kept name."""
    clock = ManualClock(time.time())
    config = _limited(fake.base_url, state_section, rpm=2)
    router = await start_router(config, clock=clock)
    for _ in range(2):
        await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    await router.server.reload(renamed(config, "renamed"))

    asked = fake.state.count()
    assert await _refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count() == asked
    clock.advance(120)  # both windows past
    reply = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert reply.route.deployment == "renamed/model-a"


async def _set_enabled(router: RouterHandle, provider: str, enabled: bool) -> None:
    switch = admin_pb.SetKeyEnabledRequest(
        provider=provider, fingerprint=fingerprint("sk-alpha-1"), enabled=enabled, reason="leaked"
    )
    await router.admin.SetKeyEnabled(switch)


async def test_a_provider_renamed_back_takes_the_keys_state_under_the_name_between(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """alpha's key disabled by hand, alpha renamed `renamed` (the disable carried), the key
    enabled again there, then renamed back `alpha`: enabled, not alpha's disable of before
    (which the store still holds under that name)."""
    config = {**_one_alpha_key(fake.base_url), "state": state_section}
    router = await start_router(config, clock=ManualClock(time.time()))
    await _set_enabled(router, "alpha", False)
    await router.server.reload(renamed(config, "renamed"))
    await _set_enabled(router, "renamed", True)
    await router.server.reload(renamed(config, "alpha"))

    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(provider="alpha"))
    (key,) = listed.keys
    assert key.state != admin_pb.KEY_STATE_DISABLED
    reply = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert reply.route.deployment == "alpha/model-a"


async def test_a_disable_written_under_the_old_name_since_stands_on_a_rename_back(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """What another replica (one not renamed) wrote under `alpha` after this one renamed it
    away is not stale: the rename back keeps it."""
    config = {**_one_alpha_key(fake.base_url), "state": state_section}
    router = await start_router(config, clock=ManualClock(time.time()))
    alpha = router.runtime.pools["alpha"]
    await router.server.reload(renamed(config, "renamed"))
    await alpha.set_enabled(alpha.keys[0], False, note="leaked")  # as a replica still on alpha
    await router.server.reload(renamed(config, "alpha"))

    assert await _refused(router) == grpc.StatusCode.UNAVAILABLE


async def test_the_renamed_keys_state_is_in_place_when_the_new_config_serves(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """alpha's key cooling (a 429, 60 s). The first lease of the renamed key, taken in the
    very turn the new config starts serving (before anything else the loop runs), finds it
    cooling: the store's state was carried before, not a round trip after."""
    config = {**_one_alpha_key(fake.base_url), "state": state_section}
    router = await start_router(config, clock=ManualClock(time.time()))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"))
    assert await _refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    fake.state.clear_scenarios()
    old = router.server.runtime
    reload = asyncio.ensure_future(router.server.reload(renamed(config, "renamed")))
    while router.server.runtime is old:
        assert not reload.done()
        await asyncio.sleep(0)
    first = await router.server.runtime.pools["renamed"].lease("model-a")
    if isinstance(first, KeyLease):
        await first.release()
    await reload

    assert isinstance(first, Unavailable)
    assert await _refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_model_denied_every_key_stays_denied_under_the_new_name(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """alpha's one key refused its model (MODEL_DENIED): renamed, its key is still refused it,
    PERMISSION_DENIED, not a 429 to wait out the set-aside its cooldown carried alone."""
    config = {**_one_alpha_key(fake.base_url), "state": state_section}
    router = await start_router(config, clock=ManualClock(time.time()))
    denied = {"error": {"message": "You are not allowed to sample from this model"}}
    fake.state.set_scenario(Scenario(status=403, error_body=denied))
    assert await _refused(router) == grpc.StatusCode.PERMISSION_DENIED
    await router.server.reload(renamed(config, "renamed"))

    assert await _refused(router) == grpc.StatusCode.PERMISSION_DENIED
    assert fake.state.count() == 1
