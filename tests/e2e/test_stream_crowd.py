"""Hundreds of streams at once, ended every way (tests/e2e/test_stream_cleanup.py: one at a
time): every lease, active mark, upstream request and task is gone afterwards."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import BODY, StartEdge, error_of, events, stream_config
from tests.e2e.test_stream_cleanup import back_to, idle_census
from tests.helpers import advance_until_done, eventually

PER_KIND = 100
KINDS = ("ends", "stalls", "left")


def crowd_config(fake: FakeUpstream) -> dict[str, Any]:
    """A model per way to end: `ends` normally, `stalls` after its chunks, `left` by its caller."""
    config = stream_config(fake.base_url, stall_s=6.0, heartbeat_s=0.2)
    # A stall cools its deployment; late starters would wait the cooldown out (the planner's
    # last resort), which is not what this test is about.
    config["cooldowns"] = {"transient_s": 0.01}
    config["models"] = {
        kind: {"deployments": [{"provider": "alpha", "model": kind}]} for kind in KINDS
    }
    fake.state.set_scenario(Scenario(chunks=2, chunk_interval_ms=300), model="ends")
    fake.state.set_scenario(Scenario(chunks=3, stall_after_chunks=3), model="stalls")
    fake.state.set_scenario(Scenario(chunks=100, chunk_interval_ms=100), model="left")
    return config


async def one(http: httpx.AsyncClient, kind: str, i: int) -> bytes:
    body = {**BODY, "model": kind, "messages": [{"role": "user", "content": f"#{i}"}]}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        received = b""
        async for part in response.aiter_bytes():
            received += part
            if kind == "left" and received.count(b'"content":"') >= 3:
                break  # the caller goes away mid-stream
        return received


async def crowd(http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock) -> list[bytes]:
    """Every kind's bodies, in KINDS order. The stall window is on the router's clock, moved
    only once every live stream has ended and every stalled one is stalled: a loaded 2-core
    machine (300 streams and whatever else runs: a 300 ms gap once took 2.5 s) never makes a
    slow but live stream look stalled."""
    async with asyncio.timeout(30):
        streams = {
            kind: asyncio.gather(*(one(http, kind, i) for i in range(PER_KIND))) for kind in KINDS
        }
        await asyncio.gather(streams["ends"], streams["left"])  # the clock stands still

        def stalled() -> bool:
            calls = fake.state.calls(model="stalls")
            return [c.outcome for c in calls] == ["stalled"] * PER_KIND

        await fake.state.wait_for(stalled, what="every stalled stream stalled")
        await advance_until_done(clock, 1.0, streams["stalls"], what="the stall windows")
    return [body for kind in KINDS for body in streams[kind].result()]


async def test_hundreds_of_streams_end_every_way_and_leave_nothing_behind(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """300 streams open at once, heartbeating, ended by a mix of normal ends, stalls and callers
    who leave: every lease, active mark, upstream request and task is gone afterwards."""
    clock = ManualClock()
    router = await start_router(crowd_config(fake), clock=clock)
    edge = await start_edge(router)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=30, limits=limits) as http:
        await one(http, "ends", -1)  # warm up
        baseline = await idle_census(router.server)
        bodies = await crowd(http, fake, clock)

    ends, stalls = bodies[:PER_KIND], bodies[PER_KIND : 2 * PER_KIND]
    for body in ends:
        assert body.endswith(b"data: [DONE]\n\n") and b'"finish_reason":"stop"' in body
        assert b'"error"' not in body
    for body in stalls:
        *_, error, done = events(body)
        assert done == b"data: [DONE]" and error_of(error)["type"] == "stream_timeout"
    assert sum(b": keepalive" in body for body in bodies) >= PER_KIND  # idle streams heartbeat
    await fake.state.wait_idle(timeout=10)
    for record in fake.state.calls(model="stalls") + fake.state.calls(model="left"):
        assert record.client_disconnected  # the router closed each abandoned upstream request
    await eventually(lambda: nothing_held(router), what="every lease and active mark released")
    await back_to(baseline)


async def nothing_held(router: RouterHandle) -> bool:
    """A caller's leaving is seen upstream before its lease goes: polled."""
    return await router.leases_held() == 0 and not await router.runtime.sessions.active("alpha")
