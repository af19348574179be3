"""RouteLeases (PickRoute): a pick the caller abandons gives back what it had taken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import (
    CooldownsConfig,
    KeyConfig,
    ProviderConfig,
    RoutingConfig,
    SessionsConfig,
)
from router_service.engine import AttemptRunner, Deployment, Planner, RequestContext, RouteLeases
from router_service.keys import KeyPool
from router_service.providers import OpenAIAdapter
from router_service.routing import RoutingStats
from router_service.sessions import SessionState
from router_service.state import MemoryStateStore


class SlowMarks(MemoryStateStore):
    """A session's active mark takes a round trip (Redis, under provider-ban)."""

    completes_without_waiting = False

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.entering = asyncio.Event()

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        self.entering.set()
        await asyncio.Event().wait()  # the answer never comes before the caller leaves
        raise AssertionError("unreachable")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_a_pick_cancelled_while_its_session_is_marked_gives_its_key_back(
    http: httpx.AsyncClient,
) -> None:
    clock = ManualClock()
    store = SlowMarks(clock)
    keys = [KeyConfig(key=SecretStr("k1"), max_in_flight=1)]
    config = ProviderConfig(
        base_url="http://127.0.0.1:9/v1", keys=keys, thread_protection="provider-ban"
    )
    cooldowns = CooldownsConfig()
    pool = KeyPool("p", keys, store=store, clock=clock, cooldowns=cooldowns, lease_ttl_s=600)
    deployment = Deployment("p/m", "p", "m", OpenAIAdapter("p", config, http, clock), pool)
    sessions = SessionState(store, clock, SessionsConfig())
    stats = RoutingStats(store, clock, RoutingConfig())
    planner = Planner(
        {"p/m": deployment}, {}, store=store, clock=clock, stats=stats, sessions=sessions
    )
    runner = AttemptRunner(store, clock, cooldowns, sessions, stats)
    leases = RouteLeases(planner, runner, clock, ttl_s=60)
    ctx = RequestContext("p/m", clock, session_id="s")

    pick = asyncio.create_task(leases.pick(ctx, tokens=0, exclude=frozenset()))
    await store.entering.wait()
    pick.cancel()  # the PickRoute caller went away (its deadline, a disconnect)
    with pytest.raises(asyncio.CancelledError):
        await pick
    assert pool.health[pool.keys[0].fingerprint].in_flight == 0
    assert await store.held([pool.slot_name(pool.keys[0])]) == [0]  # not held for 600 s
    assert len(leases) == 0
