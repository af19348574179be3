"""A reload that turns a provider's thread protection to `provider-ban` counts the
conversations it already serves: their marks, kept in this replica's memory while no limit
counted them (a Redis-backed router), move to the shared store, where the new `max_sessions`
counts them, and leave it when their calls end (memory and Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SessionsConfig, SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import ActiveMark, LocalMarks, SessionState
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_routing import ask
from tests.router_service.sessions.test_busy_provider import held_on_alpha

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(20)


def _validated(config: dict[str, Any]) -> SwitchboardConfig:
    return SwitchboardConfig.model_validate({"auth": {"open": True}, **config})


def _config(fake: FakeUpstream, state: dict[str, Any], protection: str) -> dict[str, Any]:
    config = base_config(fake.base_url, state=state)
    config["providers"]["alpha"]["thread_protection"] = protection  # max_sessions: 1
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    return config


async def test_a_reload_to_provider_ban_counts_the_conversations_already_served(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    router = await start_router(_config(fake, state_section, "model-skip"))
    stream = await held_on_alpha(router, fake)  # s1 is served by alpha, before any limit
    reloaded = _config(fake, state_section, "provider-ban")
    await router.server.reload(_validated(reloaded))

    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await router.stub.Chat(ask(model="alpha-only", session="s2"))
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_sessions" in (busy.value.details() or "")

    stream.cancel()  # s1 ends: its mark leaves, wherever it was moved
    fake.state.set_scenario(Scenario(), model="model-a")

    async def s1_gone() -> bool:
        return not await router.runtime.sessions.active("alpha")

    await eventually(s1_gone, what="s1's mark left")
    answer = await router.stub.Chat(ask(model="alpha-only", session="s2"))
    assert answer.route.deployment == "alpha/model-a"


async def _marked_locally(
    shared: MemoryStateStore, clock: ManualClock
) -> tuple[SessionState, ActiveMark]:
    """A replica's sessions on `shared`, and s1's mark on alpha, kept in its memory (no limit)."""
    sessions = SessionState(shared, clock, SessionsConfig(), marks=LocalMarks(clock))
    mark = await sessions.enter("s1", "alpha", None)
    assert mark is not None
    return sessions, mark


async def test_a_moved_mark_renewed_by_its_long_stream_leaves_the_shared_store_too() -> None:
    clock = ManualClock()
    shared = MemoryStateStore(clock)
    sessions, mark = await _marked_locally(shared, clock)
    assert await sessions.share(["alpha"]) == 1
    assert await shared.members("active:alpha") == {"s1": 1}
    renewed = await sessions.renew(mark)
    assert await sessions.active("alpha") == {"s1": 1}  # counted once, in the store
    await sessions.leave(renewed)
    assert await shared.members("active:alpha") == {}
    assert await sessions.active("alpha") == {}


class _SlowStore(MemoryStateStore):
    """A shared store whose marks are entered once `answer` is set (a Redis round trip)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.asked, self.answer = asyncio.Event(), asyncio.Event()

    async def enter(self, group: str, member: str, *, limit: int | None, ttl_s: float) -> Any:
        self.asked.set()
        await self.answer.wait()
        return await super().enter(group, member, limit=limit, ttl_s=ttl_s)


async def test_a_mark_that_leaves_while_the_reload_moves_it_leaves_the_shared_store_too() -> None:
    # Its call ended while its copy was being entered in the shared store: the copy stayed
    # there, counted by max_sessions until its TTL (the call's leave had found nothing moved).
    clock = ManualClock()
    shared = _SlowStore(clock)
    sessions, mark = await _marked_locally(shared, clock)
    sharing = asyncio.ensure_future(sessions.share(["alpha"]))
    await shared.asked.wait()
    await sessions.leave(mark)  # s1's call ends meanwhile
    shared.answer.set()
    await sharing
    assert await shared.members("active:alpha") == {}
    assert await sessions.active("alpha") == {}


async def test_a_call_waiting_for_a_key_during_the_reload_counts_too(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    # s3's call began before the reload and waited for alpha's one key slot: its mark, made
    # once it had the slot, after the reload moved the others, stayed in the replica's memory,
    # and s2 was served beside it, over max_sessions.
    config = _config(fake, state_section, "model-skip")
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "max_in_flight": 1}]
    router = await start_router(config)
    s1 = await held_on_alpha(router, fake)  # holds the key's one slot
    queued = ask(model="alpha-only", session="s3")
    s3 = router.stub.ChatStream(pb.ChatStreamRequest(params=queued.params, routing=queued.routing))
    waiting = asyncio.ensure_future(anext(aiter(s3)))

    async def s3_waits() -> bool:
        return router.runtime.pools["alpha"].waiting == 1

    await eventually(s3_waits, what="s3 waiting for the key")
    await router.server.reload(_validated(_config(fake, state_section, "provider-ban")))
    s1.cancel()  # s3 takes the slot, on the config it began with
    await waiting

    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await router.stub.Chat(ask(model="alpha-only", session="s2"))
    s3.cancel()
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_sessions" in (busy.value.details() or "")
