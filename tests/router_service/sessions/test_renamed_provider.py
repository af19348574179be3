"""A reload that renames a provider, its settings alike (`keys.take_over`: the same keys at the
same endpoint), keeps what its conversations had there: the conversations its calls under way
serve still count in its `max_sessions`, a conversation it banned or skipped stays banned or
skipped for the rest of its thread cooldown, and one stuck to it stays stuck (a real router
on loopback, memory and Redis state)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SessionsConfig, SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import Renames, SessionState
from router_service.state import MemoryStateStore
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
    return SwitchboardConfig.model_validate(_renamed_raw(config))


def _renamed_raw(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["providers"]["renamed"] = config["providers"].pop("alpha")
    for group in config["models"].values():
        for deployment in group["deployments"]:
            if deployment["provider"] == "alpha":
                deployment["provider"] = "renamed"
    return config


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


async def test_a_call_under_way_that_fails_over_to_it_after_the_reload_counts_the_new_name(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    # s3's call began before the reload, on beta; failing there after it, it went on to
    # alpha under its old name, where only the old name's conversations were counted: it was
    # served beside s1, which the new name already served, over max_sessions.
    config = _config(fake, state_section, "provider-ban")
    router = await start_router(config)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-b")
    fake.state.hold()
    s3 = asyncio.ensure_future(router.stub.Chat(ask(model="beta-first", session="s3")))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="s3 on beta")
    await router.server.reload(_renamed(config))
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")
    first = ask(model="alpha-only", session="s1")
    s1 = router.stub.ChatStream(pb.ChatStreamRequest(params=first.params, routing=first.routing))
    served = asyncio.ensure_future(anext(aiter(s1)))  # s1's place is taken before its answer
    await fake.state.wait_for(lambda: fake.state.held == 2, what="s1 on renamed")
    fake.state.release()
    await served

    with pytest.raises(grpc.aio.AioRpcError):  # beta failed it and alpha is s1's
        await s3
    s1.cancel()
    assert fake.state.count(model="model-a") == 1  # s1's call only


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


async def test_a_new_provider_under_a_renamed_ones_old_name_is_its_own(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    # alpha renamed `renamed`, then a later reload adds another provider called alpha (other
    # keys): a conversation stuck to the new alpha/model-a was sent to renamed/model-a.
    clock = ManualClock()
    config = _config(fake, state_section, "off")
    router = await start_router(config, clock=clock)
    await router.server.reload(_renamed(config))
    again = _renamed_raw(config)
    again["providers"]["alpha"] = {**config["providers"]["alpha"], "keys": ["sk-new-alpha"]}
    again["models"]["beta-first"]["deployments"] = [
        {"provider": "beta", "model": "model-b"},
        {"provider": "alpha", "model": "model-a"},
        {"provider": "renamed", "model": "model-a"},
    ]
    await router.server.reload(SwitchboardConfig.model_validate(again))
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-b")
    moved = await router.stub.Chat(ask(model="beta-first", session="s1"))
    assert moved.route.deployment == "alpha/model-a"  # s1 sticks to the new alpha
    await _settled(router, clock)

    stuck = await router.stub.Chat(ask(model="beta-first", session="s1"))
    assert stuck.route.deployment == "alpha/model-a"


def test_the_old_names_are_read_no_more_once_what_they_kept_has_expired() -> None:
    # Every plan read a renamed provider's bans and skips under its old names too, until a
    # restart (3.5 -> 9.8 us of a plan's reading, and more names in its store read): what they
    # kept is gone once sticky_ttl_s and thread_cooldown_s have passed since the reload.
    clock = ManualClock()
    config = SessionsConfig(sticky_ttl_s=60, thread_cooldown_s=30)
    sessions = SessionState(MemoryStateStore(clock), clock, config)
    renames = Renames().after({"renamed": "alpha"}, [("alpha/model-a", "renamed/model-a")])
    sessions.renamed(renames)
    args = ("s1", ["renamed"], ["renamed/model-a"])
    assert len(sessions.exclusion_names(*args)) == 4  # under alpha's names too
    clock.advance(59)
    written = sessions.exclusion_names(*args)
    assert sessions.excluded_by(*args[1:], [0.0, 9.0, 0.0, 0.0]) == ({"renamed": 9.0}, {})
    clock.advance(1)
    assert sessions.exclusion_names(*args) == ["sban:s1:renamed", "sskip:s1:renamed/model-a"]
    # A plan that read them just before still reads what it read.
    assert sessions.excluded_by(*args[1:], [0.0, 9.0, 0.0, 0.0]) == ({"renamed": 9.0}, {})
    assert len(written) == 4
    assert sessions.excluded_by(*args[1:], [0.0, 0.0]) == ({}, {})
