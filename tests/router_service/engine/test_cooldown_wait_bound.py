"""Every deployment of a group cooling: the router waits for the soonest cooldown to end, but
never longer than `routing.max_cooldown_wait_s`. A 503's `Retry-After` cools a deployment for
up to 300 s, and a caller with no deadline (the client library's default) or a long one (the
edge's `request_timeout_s`, 600 s) was held that long; past the bound it is answered at once
with the all-cooling refusal (429 `no_capacity`, `Retry-After`: when the soonest ends)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import openai
import pytest

from clients.errors import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.router_service.server.test_batches import ended
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    SERVICE_KEY,
    ask,
    two_providers,
    with_route_client,
)

pytestmark = pytest.mark.timeout(30)

ALL_COOLING = "No deployment of `chat` may serve this request: alpha/model-a (cooldown"


async def _chat(router: RouterHandle) -> None:
    await router.stub.Chat(ask(session="s2"), metadata=AS_SERVICE)


async def _stream(router: RouterHandle) -> None:
    chat = ask(session="s2")
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    async for _ in router.stub.ChatStream(request, metadata=AS_SERVICE):
        pass


async def _pick(router: RouterHandle) -> None:
    request = pb.PickRouteRequest(model="chat", routing=ask(session="s2").routing)
    await router.stub.PickRoute(request, metadata=AS_SERVICE)


async def _cooled(
    fake: FakeUpstream, start_router: StartRouter, session: str = "s1", **routing: Any
) -> RouterHandle:
    """A router on a ManualClock whose two deployments both answered a 503 asking for 300 s
    (`cooldowns.server_retry_after_max_s`): both cool that long."""
    config = with_route_client(two_providers(fake.base_url))
    config["routing"] = routing
    router = await start_router(config, clock=ManualClock())
    fake.state.set_scenario(Scenario.server_error(503, retry_after="300", times=2))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask(session=session), metadata=AS_SERVICE, timeout=5)
    return router


@pytest.mark.parametrize("call", [_chat, _stream, _pick], ids=["unary", "stream", "pick"])
async def test_with_no_deadline_a_cooldown_past_the_bound_is_refused_at_once(
    fake: FakeUpstream, start_router: StartRouter, call: Callable[[RouterHandle], Awaitable[None]]
) -> None:
    """It waited the whole 300 s (on the clock) with nothing to bound it."""
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    started = clock.now()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(router)  # a ManualClock's sleep moves it: a wait is seen on it
    assert clock.now() == started  # refused at once, not after a wait
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(refused.value)
    assert details.reason == "NO_CAPACITY"
    assert details.message.startswith(ALL_COOLING), details.message
    assert details.retry_after_s == pytest.approx(300.0, abs=1.0)
    assert fake.state.count() == 2  # nothing sent into the cooldowns


async def test_a_cooldown_within_the_bound_is_still_waited_out(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await _cooled(fake, start_router, max_cooldown_wait_s=400)
    clock = router.runtime.clock
    started = clock.now()
    await _chat(router)  # a ManualClock's sleep moves it
    assert clock.now() - started >= 300.0


async def test_through_the_edge_a_cooldown_past_the_bound_is_a_429_with_retry_after(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Any]],
) -> None:
    """The edge gives every call its `request_timeout_s` (600 s): longer than the cooldown, so
    the OpenAI SDK's call was held for 300 s."""
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=SERVICE_KEY, max_retries=0, timeout=20
    ) as sdk:
        started = clock.now()
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
    assert clock.now() == started
    response = refused.value.response
    assert response.json()["error"]["code"] == "no_capacity"
    assert response.json()["error"]["message"].startswith(ALL_COOLING)
    assert response.headers["retry-after"] == "300"
    assert fake.state.count() == 2


async def test_a_reload_of_the_bound_applies_and_keeps_the_statistics(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The bound is read at each plan of the new config; it is no statistics setting, so a
    reload changing only it carries the routing statistics over (as any other section)."""
    router = await _cooled(fake, start_router)
    stats = router.runtime.stats
    config = with_route_client(two_providers(fake.base_url))
    config["routing"] = {"max_cooldown_wait_s": 400}
    await router.server.reload(SwitchboardConfig.model_validate(config))
    assert router.runtime.stats is stats
    clock = router.runtime.clock
    started = clock.now()
    await _chat(router)  # waited out now
    assert clock.now() - started >= 300.0


@pytest.mark.parametrize("call", [_chat, _pick], ids=["unary", "pick"])
async def test_a_skipped_deployment_cooling_too_is_named_cooling_with_its_end(
    fake: FakeUpstream, start_router: StartRouter, call: Callable[[RouterHandle], Awaitable[None]]
) -> None:
    """Both failed conversation s2 (skipped for it) and cool for 300 s: the refusal said only
    `(session_skip)`, not that they cool for everyone, nor until when."""
    router = await _cooled(fake, start_router, session="s2")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(router)
    message = details_from_rpc_error(refused.value).message
    assert "alpha/model-a (session_skip; cooling for another 300 s)" in message, message
    assert "beta/model-b (session_skip; cooling for another 300 s)" in message, message


@pytest.mark.parametrize("call", [_chat, _pick], ids=["unary", "pick"])
async def test_a_cooling_end_in_the_message_rounds_up_as_the_retry_hint_does(
    fake: FakeUpstream, start_router: StartRouter, call: Callable[[RouterHandle], Awaitable[None]]
) -> None:
    """299.3 s left: `Retry-After` says 300 (rounded up, not to be early); the message said
    "cooling for another 299 s" (rounded to nearest), a second before the hint."""
    router = await _cooled(fake, start_router, session="s2")
    clock = router.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(0.7)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(router)
    details = details_from_rpc_error(refused.value)
    assert details.retry_after_s is not None and math.ceil(details.retry_after_s) == 300
    assert "alpha/model-a (session_skip; cooling for another 300 s)" in details.message
    assert "beta/model-b (session_skip; cooling for another 300 s)" in details.message


@pytest.mark.parametrize("call", [_chat, _pick], ids=["unary", "pick"])
async def test_a_skipped_deployment_cooling_past_the_bound_retries_after_its_cooldown(
    fake: FakeUpstream, start_router: StartRouter, call: Callable[[RouterHandle], Awaitable[None]]
) -> None:
    """Skipped by s2 for `sessions.thread_cooldown_s` (600 s) and cooling 300 s: once the
    cooldown ends the skipped one is tried (nothing else is left), so the refusal's retry hint
    is 300 s. It said 600 s, the skip's end: a batch line or a client waited twice as long."""
    router = await _cooled(fake, start_router, session="s2")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(router)
    assert details_from_rpc_error(refused.value).retry_after_s == pytest.approx(300.0, abs=1.0)
    clock = router.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(301.0)
    await call(router)  # served at the hint, as it said


async def test_a_batch_line_waits_out_a_cooldown_past_the_bound_and_is_answered(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A batch line has no deadline but its batch's window (24 h): it waited out the 300 s
    cooldown before the bound; past the bound its 429 `no_capacity` failed the line (one
    upstream 503 failed every line run in the next 300 s). It asks again at the retry hint."""
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    started = clock.now()
    done = await ended(router, jsonl(chat_line("one", model="chat")), AS_SERVICE)
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 0)
    assert clock.now() - started >= 300.0
    assert fake.state.count() == 3  # the two 503s, then the line's answer after the cooldown
