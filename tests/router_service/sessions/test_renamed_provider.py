"""A reload that renames a provider, its settings alike (`keys.take_over`: the same keys at the
same endpoint), keeps what its conversations had there: the conversations its calls under way
serve still count in its `max_sessions`, a conversation it banned or skipped stays banned or
skipped for the rest of its thread cooldown, and one stuck to it stays stuck (a real router
on loopback, memory and Redis state)."""

from __future__ import annotations

import copy
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_routing import ask
from tests.router_service.sessions.test_busy_provider import held_on_alpha

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(30)
TRANSIENT_S = 15.0


def _config(fake: FakeUpstream, state: dict[str, Any], protection: str) -> dict[str, Any]:
    """alpha with `protection` (max_sessions: 1 where it bans); `chain` and `again` try alpha,
    then beta; `beta-first` beta, then alpha; beta only ever unsticks."""
    config = base_config(fake.base_url, state=state, cooldowns={"transient_s": TRANSIENT_S})
    config["providers"]["alpha"]["thread_protection"] = protection
    config["providers"]["beta"]["thread_protection"] = "off"
    both = config["models"]["chain"]["deployments"]
    config["models"]["again"] = {"deployments": copy.deepcopy(both)}
    config["models"]["beta-first"] = {"deployments": copy.deepcopy(both[::-1])}
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    return config


def _renamed(config: dict[str, Any]) -> SwitchboardConfig:
    """`config` with alpha called `renamed`, wherever it is named."""
    config = copy.deepcopy(config)
    config["providers"]["renamed"] = config["providers"].pop("alpha")
    for group in config["models"].values():
        for deployment in group["deployments"]:
            if deployment["provider"] == "alpha":
                deployment["provider"] = "renamed"
    return SwitchboardConfig.model_validate(config)


async def test_the_conversations_under_way_still_count_in_max_sessions(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    config = _config(fake, state_section, "provider-ban")
    router = await start_router(config)
    stream = await held_on_alpha(router, fake)  # s1 holds alpha's one place
    await router.server.reload(_renamed(config))
    assert [len(s.active) for s in await _sessions(router, "renamed")] == [1]  # s1's

    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await router.stub.Chat(ask(model="alpha-only", session="s2"))
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_sessions" in (busy.value.details() or "")
    # s1 itself goes on: its place is its own.
    fake.state.set_scenario(Scenario(), model="model-a")
    assert (await router.stub.Chat(ask(model="alpha-only", session="s1"))).route.deployment == (
        "renamed/model-a"
    )

    stream.cancel()  # s1's call ends: its place is free

    async def s2_served() -> bool:
        try:
            await router.stub.Chat(ask(model="alpha-only", session="s2"))
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(s2_served, what="s2 served once s1's call ended")


@pytest.mark.parametrize("protection", ["provider-ban", "model-skip"])
async def test_a_conversation_kept_off_the_provider_stays_off(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any], protection: str
) -> None:
    clock = ManualClock()
    config = _config(fake, state_section, protection)
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    moved = await router.stub.Chat(ask(model="chain", session="s1"))
    assert moved.route.deployment == "beta/model-b"  # s1 is kept off alpha/model-a
    await _settled(router, clock)
    await router.server.reload(_renamed(config))
    (listed,) = await _sessions(router, "renamed")
    key = moved.route.session_id
    assert (list(listed.banned_sessions), list(listed.skipped)) == (
        ([key], []) if protection == "provider-ban" else ([], [f"{key} renamed/model-a"])
    )

    # `again` has no sticky choice: only s1's ban or skip keeps it off.
    assert (await router.stub.Chat(ask(model="again", session="s2"))).route.deployment == (
        "renamed/model-a"
    )
    assert (await router.stub.Chat(ask(model="again", session="s1"))).route.deployment == (
        "beta/model-b"
    )


async def test_a_conversation_stuck_to_the_provider_stays_stuck(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    clock = ManualClock()
    config = _config(fake, state_section, "off")
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-b")
    moved = await router.stub.Chat(ask(model="beta-first", session="s1"))
    assert moved.route.deployment == "alpha/model-a"  # s1 sticks there
    await _settled(router, clock)
    await router.server.reload(_renamed(config))

    again = await router.stub.Chat(ask(model="beta-first", session="s1"))
    assert again.route.deployment == "renamed/model-a"


async def _sessions(router: RouterHandle, provider: str) -> list[Any]:
    """What AdminService.GetRoutingStats lists of `provider`'s conversations."""
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    return [s for s in stats.sessions if s.provider == provider]


async def _settled(router: RouterHandle, clock: ManualClock) -> None:
    """The failure's writes done, and its deployment's cooldown over."""
    await router.runtime.afterwork.drain()
    clock.advance(TRANSIENT_S + 1)
