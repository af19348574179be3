"""A provider renamed by a reload, its settings alike (`keys.take_over`, `_reload.carried_over`):
a key is its secret and the endpoint it is sent to, not the name it is filed under, so what
the router knew of its keys (cooldowns, disables, half-open recovery) goes on under the name."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import chat
from tests.router_service.server.processes import params
from tests.router_service.server.test_reload_carry_over import _one_alpha_key, renamed

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


async def _solo_refused(router: RouterHandle) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    code: grpc.StatusCode = refused.value.code()
    return code


async def _cooling(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, **sections: Any
) -> tuple[dict[str, Any], RouterHandle]:
    """`solo` on alpha's one key, which cools for model-a for 60 s (a 429)."""
    config = {**_one_alpha_key(fake.base_url), **sections}
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"), key="sk-alpha-1")
    await _solo_refused(router)
    fake.state.clear_scenarios()
    return config, router


async def test_a_renamed_provider_keeps_its_keys_cooldowns(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    clock = ManualClock(time.time())
    config, router = await _cooling(fake, start_router, clock, state=state_section)
    await router.server.reload(renamed(config, "renamed"))

    asked = fake.state.count()
    assert await _solo_refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count() == asked  # still cooling: the upstream was not asked again
    clock.advance(61)
    reply = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert reply.route.deployment == "renamed/model-a"
    assert await router.leases_held() == 0


async def test_a_renamed_provider_keeps_a_disabled_key_disabled(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    config = {**_one_alpha_key(fake.base_url), "state": state_section}
    config["providers"]["alpha"]["keys"] = ["sk-alpha-1", "sk-alpha-2"]
    clock = ManualClock(time.time())
    router = await start_router(config, clock=clock)
    off = admin_pb.SetKeyEnabledRequest(
        provider="alpha", fingerprint=fingerprint("sk-alpha-2"), enabled=False, reason="leaked"
    )
    await router.admin.SetKeyEnabled(off)
    await router.server.reload(renamed(config, "renamed"))

    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(provider="renamed"))
    states = {key.fingerprint: key for key in listed.keys}
    assert states[fingerprint("sk-alpha-2")].state == admin_pb.KEY_STATE_DISABLED
    assert "leaked" in states[fingerprint("sk-alpha-2")].disabled_note
    for _ in range(3):  # the disabled key is not used under its new name either
        await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert {record.key for record in fake.state.records} == {"sk-alpha-1"}


async def test_a_provider_renamed_with_other_settings_starts_afresh(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Other settings (its headers: an organization): what the key met said nothing of them."""
    config, router = await _cooling(fake, start_router, ManualClock(time.time()))
    await router.server.reload(renamed(config, "renamed", headers={"OpenAI-Organization": "org-b"}))

    reply = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert reply.route.deployment == "renamed/model-a"


async def test_a_renamed_providers_deployment_stays_cooled_down(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """`chain`'s first deployment failed (cooled for `cooldowns.transient_s`): renamed, it is
    still passed over for the second until its cooldown ends (each call a new conversation:
    none sticks to where the one before it was answered)."""
    config = base_config(fake.base_url)
    clock = ManualClock(time.time())
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(503), model="model-a")
    assert (await router.stub.Chat(chat(text="one"))).route.deployment == "beta/model-b"
    fake.state.clear_scenarios()
    moved = copy.deepcopy(config)
    moved["providers"]["renamed"] = moved["providers"].pop("alpha")
    for model in moved["models"].values():
        for deployment in model["deployments"]:
            deployment["provider"] = deployment["provider"].replace("alpha", "renamed")
    await router.server.reload(SwitchboardConfig.model_validate(moved))

    assert (await router.stub.Chat(chat(text="two"))).route.deployment == "beta/model-b"
    clock.advance(router.runtime.config.cooldowns.transient_s + 1)
    assert (await router.stub.Chat(chat(text="three"))).route.deployment == "renamed/model-a"


async def test_a_call_under_way_across_a_rename_cools_the_key_under_its_new_name(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The call's lease is the old pool's; its 429 (after the reload, and after the store's
    state was carried) cools the key the renamed provider leases, not the name gone."""
    config = _one_alpha_key(fake.base_url)
    router = await start_router(config, clock=ManualClock(time.time()))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"))
    fake.state.hold()
    under_way = asyncio.ensure_future(router.stub.Chat(pb.ChatRequest(params=params("solo"))))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    await router.server.reload(renamed(config, "renamed"))
    fake.state.release()
    with pytest.raises(grpc.aio.AioRpcError):
        await under_way
    fake.state.clear_scenarios()

    asked = fake.state.count()
    assert await _solo_refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count() == asked  # cooling: the upstream is not asked again


async def test_a_renamed_provider_is_the_one_whose_keys_it_has(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Two providers alike share a key; the reload drops `alpha` and renames `beta`: the new
    name is beta's (both its keys), not alpha's (one key in common, listed first)."""
    config = base_config(fake.base_url)
    config["providers"]["alpha"].update(keys=["sk-shared", "sk-alpha-2"], queue_timeout_s=0)
    config["providers"]["beta"].update(keys=["sk-shared", "sk-beta-1"], queue_timeout_s=0)
    config["models"] = {"solo": {"deployments": [{"provider": "beta", "model": "model-b"}]}}
    router = await start_router(config, clock=ManualClock(time.time()))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"))
    await _solo_refused(router)  # both beta's keys cool for model-b
    fake.state.clear_scenarios()
    moved = copy.deepcopy(config)
    del moved["providers"]["alpha"]
    moved["providers"]["gamma"] = moved["providers"].pop("beta")
    moved["models"]["solo"]["deployments"][0]["provider"] = "gamma"
    await router.server.reload(SwitchboardConfig.model_validate(moved))

    asked = fake.state.count()
    assert await _solo_refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count() == asked


async def test_a_replica_renaming_later_leaves_an_operators_disable_standing(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """Two replicas on one store. The first reloads, then an operator disables the key under
    the new name; the second reloads after, carrying the key's older credentials disable:
    the operator's stands (its why was overwritten by `auth`: a probe would then lift it)."""
    state = {"backend": "redis", "url": redis_url, "prefix": redis_prefix}
    config = {**_one_alpha_key(fake.base_url), "state": state}
    first, second = await start_router(config), await start_router(config)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"))
    await _solo_refused(second)  # alpha's key disabled: its credentials refused
    fake.state.clear_scenarios()
    await first.server.reload(renamed(config, "renamed"))
    off = admin_pb.SetKeyEnabledRequest(
        provider="renamed", fingerprint=fingerprint("sk-alpha-1"), enabled=False, reason="leaked"
    )
    await first.admin.SetKeyEnabled(off)
    await second.server.reload(renamed(config, "renamed"))

    for router in (first, second):
        listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(provider="renamed"))
        (key,) = listed.keys
        assert (key.disabled_reason, key.disabled_note) == ("manual", "leaked")
