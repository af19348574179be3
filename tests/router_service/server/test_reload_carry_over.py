"""What a config reload carries over from the runtime it replaces (`Runtime.successor`): what
this router knew of a kept key's health beyond the store's deadlines (half-open recovery, probe
backoff, last outcome: keys/_health.py), the results of the calls that outlived it, and the
settings only a restart applies (the process runs on them until then)."""

from __future__ import annotations

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
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.server.processes import params, read_events

pytestmark = pytest.mark.timeout(60)


def _one_alpha_key(fake_url: str) -> dict[str, Any]:
    """`solo` on alpha's one key, with no wait for it: a call it cannot take is refused."""
    config = base_config(fake_url)
    config["providers"]["alpha"].update(keys=["sk-alpha-1"], queue_timeout_s=0)
    config["models"] = {"solo": {"deployments": [{"provider": "alpha", "model": "model-a"}]}}
    return config


async def _alpha_key(router: RouterHandle, provider: str = "alpha") -> admin_pb.KeyStatus:
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(provider=provider))
    (key,) = listed.keys
    status: admin_pb.KeyStatus = key
    return status


async def _recovered(fake: FakeUpstream, router: RouterHandle, clock: ManualClock) -> None:
    """alpha's key refused (disabled), then probed back: half-open, one call at a time."""
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="sk-alpha-1")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    fake.state.clear_scenarios()
    clock.advance(router.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await router.runtime.prober.tick() == 1


def renamed(config: dict[str, Any], name: str, **changed: Any) -> SwitchboardConfig:
    """`config` with alpha called `name` (and `changed` in its settings)."""
    config = copy.deepcopy(config)
    config["providers"][name] = {**config["providers"].pop("alpha"), **changed}
    config["models"]["solo"]["deployments"][0]["provider"] = name
    return SwitchboardConfig.model_validate(config)


@pytest.mark.parametrize("name", ["alpha", "renamed"])
async def test_a_half_open_key_stays_half_open_across_a_reload(
    fake: FakeUpstream, start_router: StartRouter, name: str
) -> None:
    """Under its provider's name, or a new one (a provider renamed, its settings alike)."""
    config = _one_alpha_key(fake.base_url)
    clock = ManualClock(time.time())
    router = await start_router(config, clock=clock)
    await _recovered(fake, router, clock)
    await router.server.reload(renamed(config, name))

    assert (await _alpha_key(router, name)).last_outcome == "AUTH_INVALID"
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    first = router.stub.ChatStream(pb.ChatStreamRequest(params=params("solo")))
    try:
        assert (await anext(aiter(first))).route.deployment == f"{name}/model-a"
        # The recovering key takes one call at a time, as it did before the reload.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    finally:
        fake.state.release()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await read_events(first))[-1] == "summary"
    assert await router.leases_held() == 0


async def _counted(router: RouterHandle) -> dict[str, tuple[int, int]]:
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    return {d.deployment: (d.successes, d.failures) for d in stats.deployments}


async def test_a_stream_under_way_is_counted_when_a_reload_changes_routing(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    """Its result goes to the statistics it began with, closed by the reload (the new
    `routing:` has its own): written at once, not left unwritten for good."""
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=params("chain")))
    assert (await anext(aiter(call))).route.deployment == "alpha/model-a"
    routing = {"thompson_floor": 2.0}
    await router.server.reload(
        SwitchboardConfig.model_validate(base_config(fake.base_url, routing=routing))
    )
    fake.state.release()
    assert (await read_events(call))[-1] == "summary"

    async def counted() -> bool:
        return (await _counted(router)).get("alpha/model-a") == (1, 0)

    await eventually(counted, what="the stream's success in the routing statistics")


async def test_settings_waiting_for_a_restart_are_not_reported_as_in_force(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    """A reload that moves `state` to Redis leaves the router on its memory store until a
    restart: GetServerInfo (`switchboard admin info`) must not tell replicas share state."""
    state = {"backend": "redis", "url": "redis://127.0.0.1:1/0"}
    moved = base_config(
        fake.base_url, state=state, server={"port": 0, "max_message_bytes": 64 << 20}
    )
    pending = await router.server.reload(SwitchboardConfig.model_validate(moved))

    assert pending == ["server.max_message_bytes", "state"]
    info = await router.admin.GetServerInfo(admin_pb.GetServerInfoRequest())
    assert info.state_backend == "memory"
    assert router.runtime.config.server.max_message_bytes != 64 << 20  # the port's limit still
    await router.stub.Chat(pb.ChatRequest(params=params("chain")))  # served as before


async def _backed_off(
    fake: FakeUpstream, start_router: StartRouter
) -> tuple[dict[str, Any], RouterHandle, ManualClock]:
    """alpha's one key refused (disabled), and its probes failing until their backoff reached
    its ceiling (1000s)."""
    config = _one_alpha_key(fake.base_url)
    config["key_health"] = {"probe_initial_s": 10, "probe_max_s": 1000}
    config["cooldowns"] = {"auth_disable_s": 10**6}
    clock = ManualClock(time.time())
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="sk-alpha-1")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    for _ in range(7):  # each probe fails: its backoff doubles, up to the ceiling
        clock.advance(1500)
        assert await router.runtime.prober.tick() == 1
    return config, router, clock


async def test_a_key_whose_provider_changed_is_probed_again_soon_after_a_reload(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The same key string behind new provider settings (a header, an endpoint, a rotated
    credential file fixed by the operator): the failures it met said nothing of them, so the
    backoff they grew (up to `probe_max_s`) is not kept, and the key is probed again soon."""
    config, router, clock = await _backed_off(fake, start_router)

    config["providers"]["alpha"]["headers"] = {"OpenAI-Organization": "org-right"}
    await router.server.reload(SwitchboardConfig.model_validate(copy.deepcopy(config)))
    fake.state.clear_scenarios()  # the new settings are what the key needed
    assert await router.runtime.prober.tick() == 0  # the store's disable, adopted afresh
    clock.advance(15)  # the initial probe's longest jitter
    assert await router.runtime.prober.tick() == 1
    reply = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert reply.route.deployment == "alpha/model-a"
    assert await router.leases_held() == 0


async def test_a_key_whose_provider_is_unchanged_keeps_its_backoff_across_a_reload(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Only the key's own limits changed: the provider is reached as before, and the key's
    failed probes still count (no probe storm on a key that keeps failing)."""
    config, router, clock = await _backed_off(fake, start_router)

    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "rpm": 100}]
    await router.server.reload(SwitchboardConfig.model_validate(copy.deepcopy(config)))
    clock.advance(15)
    assert await router.runtime.prober.tick() == 0  # still at its backoff of 1000s


async def test_a_lowered_probe_ceiling_applies_to_a_backed_off_key_at_once(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """`key_health` reloads: the operator who lowers `probe_max_s` for a key probed every
    1000s has it probed by the new rules, not after the probe scheduled by the old ones."""
    config, router, clock = await _backed_off(fake, start_router)

    config["key_health"] = {"probe_initial_s": 10, "probe_max_s": 20}
    await router.server.reload(SwitchboardConfig.model_validate(copy.deepcopy(config)))
    assert await router.runtime.prober.tick() == 0  # the store's disable, adopted afresh
    clock.advance(15)
    assert await router.runtime.prober.tick() == 1
