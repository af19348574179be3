"""Wrong admin tokens on the edge are throttled (`edge.admin_throttle`), against a real router
and a real uvicorn: per client address (X-Forwarded-For from loopback, which uvicorn trusts by
default, stands for callers elsewhere) and overall, a 429 with Retry-After in OpenAI's error
JSON, on the edge's clock; the right token from another address is not slowed by one address's
failures; what is kept stays bounded however many addresses an attacker rotates through; the
refusals are logged and counted, never with a token."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from http_edge import EdgeSettings
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.http_edge.harness import Edge, stop_edge
from tests.http_edge.harness import start_edge as start_edge_on

pytestmark = pytest.mark.timeout(60)

TOKEN = "edge-admin-token-7Qx"
WRONG = "guess-Zz9-not-the-token"
StartEdge = Callable[..., Awaitable[Edge]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def start_edge(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> AsyncIterator[StartEdge]:
    """A real edge with `admin_token` in front of a real router, on the test's clock."""
    router: RouterHandle = await start_router(base_config(fake.base_url))
    edges: list[Edge] = []

    async def start(**throttle: Any) -> Edge:
        settings = EdgeSettings.model_validate(
            {
                "router_target": router.server.address,
                "admin_token": TOKEN,
                "admin_throttle": throttle,
            }
        )
        edges.append(await start_edge_on(settings, clock=clock))
        return edges[-1]

    yield start
    for edge in edges:
        await stop_edge(edge)


async def status(edge: Edge, token: str, address: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "x-forwarded-for": address}
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        return await http.get("/admin/api/status", headers=headers)


def refused(response: httpx.Response, retry_after_s: int) -> bool:
    error = response.json()["error"]
    return (
        response.status_code == 429
        and response.headers["retry-after"] == str(retry_after_s)
        and error["type"] == "rate_limit_error"
        and error["code"] == "too_many_failed_authentications"
        and TOKEN not in response.text
        and WRONG not in response.text
    )


async def test_an_address_past_its_limit_waits_out_its_window_and_no_other_does(
    start_edge: StartEdge, clock: ManualClock
) -> None:
    edge = await start_edge(per_address=3, overall=100, window_s=60)
    attacker, operator = "203.0.113.7", "198.51.100.20"

    wrong = [(await status(edge, WRONG, attacker)).status_code for _ in range(3)]
    clock.advance(20)
    locked_out = await status(edge, TOKEN, attacker)  # the right token too: it may be a guess
    elsewhere = await status(edge, TOKEN, operator)
    clock.advance(40)
    after = await status(edge, TOKEN, attacker)

    assert wrong == [401, 401, 401]
    assert refused(locked_out, retry_after_s=40)
    assert elsewhere.status_code == 200  # not slowed by another address's failures
    assert after.status_code == 200


async def test_the_overall_limit_stops_an_attacker_rotating_addresses(
    start_edge: StartEdge, clock: ManualClock
) -> None:
    edge = await start_edge(per_address=10, overall=5, window_s=30)

    for i in range(5):
        assert (await status(edge, WRONG, f"203.0.113.{i}")).status_code == 401
    fresh = await status(edge, WRONG, "203.0.113.99")
    operator = await status(edge, TOKEN, "198.51.100.20")  # the documented trade-off
    clock.advance(30)
    later = await status(edge, TOKEN, "198.51.100.20")

    assert refused(fresh, retry_after_s=30) and refused(operator, retry_after_s=30)
    assert "all addresses" in operator.json()["error"]["message"]
    assert later.status_code == 200


async def test_rotating_addresses_cannot_grow_what_is_kept(
    start_edge: StartEdge, clock: ManualClock
) -> None:
    edge = await start_edge(per_address=2, overall=8, window_s=60)
    app: Any = edge.server.config.app
    throttle = app.state.edge.admin_throttle

    codes = [(await status(edge, WRONG, f"2001:db8:{i:x}::1")).status_code for i in range(40)]
    clock.advance(59)
    codes += [(await status(edge, WRONG, f"10.0.{i}.1")).status_code for i in range(10)]

    assert codes.count(401) == 8 and set(codes) == {401, 429}
    assert len(throttle) <= 8
    clock.advance(1)  # every window over: nothing kept once asked again
    assert (await status(edge, TOKEN, "10.9.9.9")).status_code == 200
    assert len(throttle) == 0


async def test_an_ipv6_caller_is_counted_by_its_64(start_edge: StartEdge) -> None:
    edge = await start_edge(per_address=2, overall=100, window_s=60)

    for host in ("2001:db8:1:2::a", "2001:db8:1:2::b"):
        assert (await status(edge, WRONG, host)).status_code == 401
    same_64 = await status(edge, TOKEN, "2001:db8:1:2:ffff::1")
    other_64 = await status(edge, TOKEN, "2001:db8:1:3::1")

    assert same_64.status_code == 429 and other_64.status_code == 200


async def test_refusals_are_logged_and_counted_without_a_token(
    start_edge: StartEdge, caplog: pytest.LogCaptureFixture
) -> None:
    with TelemetryCapture() as captured, caplog.at_level(logging.INFO):
        edge = await start_edge(per_address=2, overall=100, window_s=60)
        for _ in range(2):
            await status(edge, WRONG, "203.0.113.7")
        await status(edge, TOKEN, "203.0.113.7")
        await status(edge, WRONG, "203.0.113.7")
        points = [
            (attributes, point.value)
            for attributes, point in captured.points("switchboard.admin.auth.refusals")
        ]

    assert points == [({"surface": "edge", "scope": "address"}, 2)]
    throttled = [r for r in caplog.records if "admin authentication throttled" in r.getMessage()]
    assert len(throttled) == 1 and "203.0.113.7" in throttled[0].getMessage()
    assert TOKEN not in caplog.text and WRONG not in caplog.text


async def test_a_missing_token_is_not_a_guess(start_edge: StartEdge) -> None:
    edge = await start_edge(per_address=1, overall=100, window_s=60)
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        for _ in range(3):
            missing = await http.get("/admin/api/status", headers={"x-forwarded-for": "192.0.2.1"})
            assert missing.status_code == 401

    assert (await status(edge, TOKEN, "192.0.2.1")).status_code == 200


async def test_a_lockout_line_carries_the_request_id_of_the_guess_that_locked_out(
    start_edge: StartEdge, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator greps a caller's `x-request-id` across the edge's and the router's logs."""
    edge = await start_edge(per_address=2, overall=100, window_s=60)
    headers = {"authorization": f"Bearer {WRONG}", "x-forwarded-for": "203.0.113.9"}
    with caplog.at_level(logging.INFO):
        async with httpx.AsyncClient(base_url=edge.base_url) as http:
            for request_id in ("req-guess-1", "req-guess-2"):
                await http.get("/admin/api/status", headers={**headers, "x-request-id": request_id})
    throttled = [r for r in caplog.records if "admin authentication throttled" in r.getMessage()]
    assert [r.__dict__.get("request_id") for r in throttled] == ["req-guess-2"]
