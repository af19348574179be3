"""What closing a successful attempt writes, and what it costs in tasks: the lease goes back, the
session's mark is left, the session sticks to the deployment when there is something to write.
Writes that reach the shared store start together (a task each) only when there are several."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

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
from router_service.engine import AttemptRunner, Deployment, Plan, RequestContext
from router_service.keys import KeyLease, KeyPool
from router_service.providers import OpenAIAdapter
from router_service.routing import RoutingStats
from router_service.sessions import SessionState
from router_service.state import MemoryStateStore
from tests.helpers import counted_tasks


class SharedLikeStore(MemoryStateStore):
    """Memory state behind a round trip: every write suspends once, and calls started together
    would share one (as the Redis store's do)."""

    batches_concurrent_calls = True
    completes_without_waiting = False

    async def release(self, resource: str, lease_id: str) -> None:
        await asyncio.sleep(0)
        await super().release(resource, lease_id)

    async def set_value(self, name: str, value: str, ttl_s: float) -> None:
        await asyncio.sleep(0)
        await super().set_value(name, value, ttl_s)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def attempt_runner(
    http: httpx.AsyncClient, store: MemoryStateStore, clock: ManualClock, **provider: Any
) -> tuple[AttemptRunner, Deployment]:
    keys = [KeyConfig(key=SecretStr("k1"))]
    config = ProviderConfig(base_url="http://127.0.0.1:9/v1", keys=keys, **provider)
    cooldowns = CooldownsConfig()
    pool = KeyPool("p", keys, store=store, clock=clock, cooldowns=cooldowns, lease_ttl_s=60)
    deployment = Deployment("p/m", "p", "m", OpenAIAdapter("p", config, http, clock), pool)
    sessions = SessionState(store, clock, SessionsConfig())
    runner = AttemptRunner(
        store, clock, cooldowns, sessions, RoutingStats(store, clock, RoutingConfig())
    )
    return runner, deployment


async def _answer(d: Deployment, lease: KeyLease, stack: AsyncExitStack) -> str:
    return "answer"


async def _served(runner: AttemptRunner, deployment: Deployment, plan: Plan) -> AsyncExitStack:
    ctx = RequestContext("g", ManualClock(), session_id="s")
    ctx.plan = plan
    value, served, stack = await runner.run(ctx, plan, _answer)
    assert (value, served) == ("answer", deployment)
    return stack


async def test_only_the_lease_to_give_back_costs_no_task_of_its_own(
    http: httpx.AsyncClient,
) -> None:
    clock = ManualClock()
    store = SharedLikeStore(clock)
    runner, deployment = attempt_runner(
        http, store, clock
    )  # no session limit: the mark stays local
    slot = deployment.pool.slot_name(deployment.pool.keys[0])

    # The first answer of a session: its new sticky choice is written before the answer (the
    # next call, on any replica, reads it); the stack has only the lease to give back.
    stack = await _served(runner, deployment, Plan([deployment]))
    assert await store.get_values(["sticky:s:g"]) == ["p/m"]
    with counted_tasks() as made:
        await stack.aclose()
    assert made == ["KeyPool._release"]
    assert await store.held([slot]) == [0]

    # The next one read that choice in its plan, and this replica wrote it: only the lease.
    stack = await _served(runner, deployment, Plan([deployment], sticky_hit=True))
    with counted_tasks() as made:
        await stack.aclose()
    assert made == ["KeyPool._release"]
    assert await store.held([slot]) == [0]
    assert await store.members("active:p") == {}  # the local mark was left too


async def test_a_shared_mark_is_left_together_with_the_lease(http: httpx.AsyncClient) -> None:
    clock = ManualClock()
    store = SharedLikeStore(clock)
    runner, deployment = attempt_runner(
        http, store, clock, thread_protection="provider-ban", max_sessions=4
    )
    stack = await _served(runner, deployment, Plan([deployment]))
    assert await store.members("active:p") == {"s": 1}  # counted where replicas see it
    assert await store.get_values(["sticky:s:g"]) == ["p/m"]  # written before the answer
    with counted_tasks() as made:
        await stack.aclose()
    # The lease and the mark start together; the release has its shield.
    assert sorted(made) == ["KeyLease.release", "KeyPool._release", "SessionState.leave"]
    assert await store.members("active:p") == {}


async def test_a_cancellation_while_the_writes_start_does_not_lose_them(
    http: httpx.AsyncClient,
) -> None:
    # A caller that leaves just as its attempt's stack closes (a failure path closes it inline)
    # cancels the close after the writes were started and before any of them ran: each must
    # still reach the store, or the lease holds the key on every replica until its TTL.
    clock = ManualClock()
    store = SharedLikeStore(clock)
    runner, deployment = attempt_runner(
        http, store, clock, thread_protection="provider-ban", max_sessions=4
    )
    slot = deployment.pool.slot_name(deployment.pool.keys[0])
    stack = await _served(runner, deployment, Plan([deployment]))
    closing = asyncio.get_running_loop().create_task(stack.aclose())
    await asyncio.sleep(0)  # one turn: the close has started its writes, none has run
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert await store.held([slot]) == [0]
    assert await store.members("active:p") == {}
    assert await store.get_values(["sticky:s:g"]) == ["p/m"]
