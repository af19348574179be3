"""A token endpoint that fails (a 503, its throttling) while tokens are due, through a real router
with `vertex` service account keys: a token that is still alive is used until it expires rather
than failing the calls it would have served, and the endpoint is asked again only after a pause,
not by every call; a key with no token at all gets one exchange for all the calls waiting on it,
whose failure they all hear."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from aiohttp import web

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream
from router_service.outcomes import Outcome
from router_service.providers._google_auth import REFRESH_MARGIN_S, TOKEN_LIFETIME_S
from router_service.providers._oauth import REFRESH_RETRY_S
from router_service.providers._vertex import VertexAdapter
from tests.conformance.helpers import chat, params
from tests.conftest import StartRouter
from tests.helpers import serve_app
from tests.router_service.providers.test_vertex_auth import bearers, vertex_config
from tests.vertex_keys import service_account

OK = routing_pb2.OUTCOME_OK


@dataclass
class TokenEndpoint:
    """Google's token endpoint in front of the fake's: it grants as the fake does, or answers
    `failing` (a status) while that is set; `asked` counts the requests, `held` keeps them
    waiting until set."""

    fake: FakeUpstream
    url: str = ""
    failing: int | None = None
    failing_headers: dict[str, str] = field(default_factory=dict)
    asked: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)

    async def token(self, request: web.Request) -> web.Response:
        self.asked += 1
        self.arrived.set()
        await self.held.wait()
        if self.failing is not None:
            body = {"error": "internal_failure", "error_description": "Backend Error"}
            return web.json_response(body, status=self.failing, headers=self.failing_headers)
        form = await request.post()
        status, body = self.fake.state.google.grant(str(form["assertion"]), self.url)
        return web.json_response(body, status=status)


@pytest.fixture
async def endpoint(fake: FakeUpstream) -> AsyncIterator[TokenEndpoint]:
    token_endpoint = TokenEndpoint(fake)
    token_endpoint.held.set()
    app = web.Application()
    app.router.add_post("/token", token_endpoint.token)
    async with serve_app(app) as url:
        token_endpoint.url = f"{url}/token"
        yield token_endpoint


@pytest.fixture
def clock(fake: FakeUpstream) -> ManualClock:
    manual = ManualClock()
    fake.state.google.clock = manual.now
    return manual


def key_of(fake: FakeUpstream, endpoint: TokenEndpoint) -> str:
    account = service_account("sa-1")
    account.register(fake)
    return account.key_json(endpoint.url)


@pytest.mark.parametrize("status", [503, 429])
async def test_a_live_token_serves_on_while_its_refresh_fails(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    endpoint: TokenEndpoint,
    status: int,
) -> None:
    router = await start_router(vertex_config(fake, [key_of(fake, endpoint)]), clock=clock)
    await chat(router, params("gemini"))
    endpoint.failing = status

    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S + 1)  # due, and alive for ~5 minutes more
    due = [await chat(router, params("gemini")) for _ in range(3)]
    clock.advance(REFRESH_RETRY_S)  # the endpoint is asked again, and still fails
    later = await chat(router, params("gemini"))

    assert [[a.outcome for a in r.route.attempts] for r in [*due, later]] == [[OK]] * 4
    assert len(set(bearers(fake))) == 1  # the first token throughout
    assert endpoint.asked == 3  # the first exchange, a refresh, and one more after the pause

    endpoint.failing = None
    clock.advance(REFRESH_RETRY_S)
    await chat(router, params("gemini"))
    assert endpoint.asked == 4 and len(set(bearers(fake))) == 2  # refreshed at last


async def test_a_token_in_its_last_minute_is_not_used_when_its_refresh_fails(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, endpoint: TokenEndpoint
) -> None:
    key = key_of(fake, endpoint)
    router = await start_router(vertex_config(fake, [key]), clock=clock)
    await chat(router, params("gemini"))
    endpoint.failing = 503
    adapter = router.runtime.adapters["vx"]
    assert isinstance(adapter, VertexAdapter)

    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S + 1)
    await adapter.tokens.bearer(key, 5.0)  # the refresh fails: the live token
    clock.advance(REFRESH_MARGIN_S - 30)  # alive for 29 s more: the API's clock may differ
    with pytest.raises(UpstreamFailure) as caught:
        await adapter.tokens.bearer(key, 5.0)

    assert caught.value.outcome is Outcome.UPSTREAM_ERROR
    assert "Backend Error" in caught.value.message
    assert endpoint.asked == 3


async def test_calls_waiting_for_a_first_token_share_the_exchange_s_failure(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, endpoint: TokenEndpoint
) -> None:
    key = key_of(fake, endpoint)
    router = await start_router(vertex_config(fake, [key]), clock=clock)
    adapter = router.runtime.adapters["vx"]
    assert isinstance(adapter, VertexAdapter)
    endpoint.failing = 503
    endpoint.held.clear()

    waiting = [asyncio.ensure_future(adapter.tokens.bearer(key, 5.0)) for _ in range(8)]
    await endpoint.arrived.wait()  # the first call's exchange; the others wait for it
    endpoint.held.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(r, UpstreamFailure) for r in results)
    assert {r.outcome for r in results if isinstance(r, UpstreamFailure)} == {
        Outcome.UPSTREAM_ERROR
    }
    assert endpoint.asked == 1


async def test_the_endpoint_s_throttling_says_how_long_to_wait(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, endpoint: TokenEndpoint
) -> None:
    """Entra's and IMDS's 429 say when to come back (`Retry-After`): the key rests that long,
    and the caller hears it, as for any upstream's rate limit."""
    router = await start_router(vertex_config(fake, [key_of(fake, endpoint)]), clock=clock)
    endpoint.failing, endpoint.failing_headers = 429, {"Retry-After": "40"}

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("gemini"))

    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.retry_after_s) == ("RATE_LIMITED", 40.0)


async def test_a_throttled_refresh_is_not_asked_again_before_its_retry_after(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, endpoint: TokenEndpoint
) -> None:
    """A live token serves on through a throttled refresh, and the endpoint, which said when to
    come back, is not asked again before then (every early ask may prolong the throttling)."""
    router = await start_router(vertex_config(fake, [key_of(fake, endpoint)]), clock=clock)
    await chat(router, params("gemini"))
    endpoint.failing, endpoint.failing_headers = 429, {"Retry-After": "120"}

    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S + 1)  # due: the refresh is throttled
    await chat(router, params("gemini"))
    clock.advance(2 * REFRESH_RETRY_S)  # past the usual pause, short of the endpoint's 120 s
    await chat(router, params("gemini"))
    assert endpoint.asked == 2

    endpoint.failing = None
    clock.advance(120 - 2 * REFRESH_RETRY_S)
    await chat(router, params("gemini"))
    assert endpoint.asked == 3 and len(set(bearers(fake))) == 2


async def test_calls_during_a_refresh_use_the_live_token_rather_than_wait_for_it(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, endpoint: TokenEndpoint
) -> None:
    """A token endpoint that hangs (down behind a load balancer) holds up the call that
    refreshes, not every call that comes meanwhile: their token is alive still."""
    router = await start_router(vertex_config(fake, [key_of(fake, endpoint)]), clock=clock)
    await chat(router, params("gemini"))
    endpoint.arrived.clear()
    endpoint.held.clear()

    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S + 1)
    refreshing = asyncio.ensure_future(chat(router, params("gemini")))
    await endpoint.arrived.wait()
    meanwhile = [await chat(router, params("gemini", text=f"call {n}")) for n in range(3)]
    endpoint.held.set()
    await refreshing

    assert [[a.outcome for a in r.route.attempts] for r in meanwhile] == [[OK]] * 3
    assert endpoint.asked == 2
    first, *others = bearers(fake)
    assert others[:3] == [first] * 3 and others[3] != first  # the old token, then the new


async def test_the_endpoint_s_outage_cools_the_deployment_as_long_as_it_asks(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, endpoint: TokenEndpoint
) -> None:
    """A 503's `Retry-After` (40 s, past `cooldowns.transient_s`' 15) keeps the deployment out
    that long: the group's next answers meanwhile, and the endpoint is not asked."""
    router = await start_router(vertex_config(fake, [key_of(fake, endpoint)]), clock=clock)
    endpoint.failing, endpoint.failing_headers = 503, {"Retry-After": "40"}

    first = await chat(router, params("chain"))
    clock.advance(39)
    second = await chat(router, params("chain", text="another conversation"))
    endpoint.failing = None
    clock.advance(1)
    third = await chat(router, params("chain", text="a third conversation"))

    assert [[a.outcome for a in r.route.attempts] for r in (first, second, third)] == [
        [routing_pb2.OUTCOME_UPSTREAM_ERROR, OK],
        [OK],
        [OK],
    ]
    assert [r.route.deployment for r in (second, third)] == [
        "backup/m-backup",
        "vx/gemini-2.5-flash",
    ]
    assert endpoint.asked == 2
