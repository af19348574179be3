"""The edge's admin views tell time by the edge's clock (`create_app(clock=...)`), as the rest of
the edge does: `generated_at` and every "left" figure are the clock's, not the machine's."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from http_edge import EdgeSettings
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.http_edge.harness import Edge, start_edge, stop_edge

TOKEN = "edge-admin-token"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
CHAT = {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}
# Years away from the machine's own time: a view on `time.time()` cannot come out equal.
NOON = dt.datetime(2031, 6, 4, 12, tzinfo=dt.UTC).timestamp()


@pytest.fixture
async def clocked(
    fake: FakeUpstream, start_router: StartRouter
) -> AsyncIterator[tuple[ManualClock, Edge]]:
    clock = ManualClock(NOON)
    router = await start_router(base_config(fake.base_url), clock=clock)
    settings = EdgeSettings.model_validate(
        {"router_target": router.server.address, "admin_token": TOKEN}
    )
    edge = await start_edge(settings, clock=clock)
    yield clock, edge
    await stop_edge(edge)


async def test_every_admin_view_is_generated_at_the_edges_clock(
    clocked: tuple[ManualClock, Edge],
) -> None:
    clock, edge = clocked
    clock.advance(90)
    async with httpx.AsyncClient(base_url=edge.base_url, headers=ADMIN) as http:
        views = [(await http.get(path)).json() for path in _VIEWS]
    assert [view["generated_at"] for view in views] == [NOON + 90] * len(_VIEWS)
    assert views[2]["server"]["up_s"] == 90.0  # the router started at NOON on the same clock


async def test_a_keys_cooldown_left_is_counted_on_the_edges_clock(
    fake: FakeUpstream, clocked: tuple[ManualClock, Edge]
) -> None:
    clock, edge = clocked
    fake.state.set_scenario(Scenario.rate_limited(retry_after="120"), key="sk-alpha-1")
    fake.state.set_scenario(Scenario.rate_limited(retry_after="120"), key="sk-alpha-2")
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/chat/completions", json=CHAT)).status_code == 200
    clock.advance(20)
    async with httpx.AsyncClient(base_url=edge.base_url, headers=ADMIN) as http:
        keys = (await http.get("/admin/keys", params={"provider": "alpha"})).json()["keys"]
    assert {tuple(key["cooling_models"].values()) for key in keys} == {(100.0,)}


_VIEWS = ("/admin/api/clients", "/admin/api/jobs", "/admin/api/status")
