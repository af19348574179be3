"""A deployment cooled by another request after this one's plan was made is passed over on the
walk (`Met.withheld`); when nothing answers, the retry hint says when it serves again, as it
does for one cooling when the plan was made."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    ask,
    two_providers,
    with_route_client,
)

pytestmark = pytest.mark.timeout(30)


async def _unary(router: RouterHandle) -> None:
    await router.stub.Chat(ask(session="s1"), metadata=AS_SERVICE)


async def _stream(router: RouterHandle) -> None:
    chat = ask(session="s1")
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    async for _ in router.stub.ChatStream(request, metadata=AS_SERVICE):
        pass


async def _cool_alpha(router: RouterHandle, session: str) -> None:
    """alpha cooled for everyone by a picked route's reported 503 (15 s: transient_s), and
    skipped for `session` (its thread cooldown) when one is given."""
    request = pb.PickRouteRequest(model="alpha/model-a", routing=ask(session=session).routing)
    picked = await router.stub.PickRoute(request, metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(
        lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_UPSTREAM_ERROR, upstream_status=503
    )
    assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted


@pytest.mark.parametrize(("session", "serves_in"), [("", 15.0), ("s1", 30.0)])
@pytest.mark.parametrize("call", [_unary, _stream], ids=["unary", "stream"])
async def test_one_cooled_during_the_walk_is_in_the_retry_hint(
    fake: FakeUpstream,
    start_router: StartRouter,
    call: Callable[[RouterHandle], Awaitable[None]],
    session: str,
    serves_in: float,
) -> None:
    """beta (first) is asked while alpha is fine; alpha cools meanwhile (15 s), skipped for the
    conversation too (30 s) when the failure was its own; beta's key answers 429 asking for
    120 s. The caller was told 120 s, though alpha serves again sooner: at the later of its
    cooldown's end and the skip's."""
    sessions = {"thread_cooldown_s": 30}
    config = with_route_client(two_providers(fake.base_url, sessions=sessions))
    config["models"]["chat"]["deployments"].reverse()  # beta first
    clock = ManualClock()
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.rate_limited(retry_after="120"), model="model-b")
    fake.state.hold()
    running = asyncio.ensure_future(call(router))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="beta asked")
    await _cool_alpha(router, session)
    fake.state.release()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).retry_after_s == pytest.approx(serves_in)
    assert fake.state.count(model="model-a") == 0  # passed over, not sent into its cooldown


async def test_a_call_without_a_session_is_told_it_too(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An embedding without `user` has no session: the cooled one's end alone (the store read
    no skip of it). It failed INTERNAL ("'float' object is not iterable"), a traceback."""
    config = with_route_client(two_providers(fake.base_url))
    config["auth"]["clients"][0]["scopes"].append("embed")
    config["models"]["embedder"] = {
        "deployments": [
            {"provider": "beta", "model": "embed-b"},  # first
            {"provider": "alpha", "model": "model-a"},
        ]
    }
    router = await start_router(config, clock=ManualClock())
    fake.state.set_scenario(Scenario.rate_limited(retry_after="120"), model="embed-b")
    fake.state.hold()
    request = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", text="hi"))
    running = asyncio.ensure_future(router.stub.Embed(request, metadata=AS_SERVICE))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="beta asked")
    await _cool_alpha(router, "")
    fake.state.release()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).retry_after_s == pytest.approx(15.0)
