"""Context-window fallbacks meeting a larger deployment that cannot serve at once: the request
is not too long for it, so the caller is never told it is (the smaller one's 400)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(20)

TOO_LONG = {
    "error": {
        "message": "maximum context length is 8000 tokens",
        "code": "context_length_exceeded",
        "type": "invalid_request_error",
    }
}


def small_then_large(fake_url: str, queue_timeout_s: float = 30) -> dict[str, Any]:
    """`chat`: a small window, then a large one whose one key serves one call at a time."""
    return {
        "providers": {
            "alpha": {
                "base_url": fake_url,
                "keys": [{"key": "ka1", "max_in_flight": 1}],
                "queue_timeout_s": queue_timeout_s,
            },
            "beta": {"base_url": fake_url, "keys": ["kb1"]},
        },
        "models": {
            "chat": {
                "deployments": [
                    {"provider": "beta", "model": "small", "context_window": 8000},
                    {"provider": "alpha", "model": "large", "context_window": 128000},
                ]
            }
        },
        "server": {"port": 0},
        "auth": {"open": True},
    }


def ask(model: str, text: str = "hi") -> pb.ChatRequest:
    """A call of `model`; its session is its text's (the hash of its opening)."""
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    return pb.ChatRequest(params=chat_pb2.ChatParams(model=model, messages=[message]))


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_too_long_for_the_small_one_waits_for_the_busy_large_one(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    router = await start_router(small_then_large(fake.base_url))
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="small")
    fake.state.set_scenario(Scenario(chunks=10, held_after_chunks=2), model="large")
    busy = router.stub.ChatStream(pb.ChatStreamRequest(params=ask("alpha/large").params))
    reading = asyncio.ensure_future(_all(busy))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the large one's key busy")
    fake.state.remove_scenario(model="large")

    asking = asyncio.ensure_future(_route(router, ask("chat"), stream))
    await fake.state.wait_for(lambda: fake.state.count(model="small") == 1, what="small asked")
    fake.state.release()  # the stream ends: the large one's key is free again
    await reading
    route = await asking

    assert route.deployment == "alpha/large"
    assert [(a.deployment, a.outcome) for a in route.attempts] == [
        ("beta/small", routing_pb2.OUTCOME_CONTEXT_TOO_LONG),
        ("alpha/large", routing_pb2.OUTCOME_OK),
    ]
    assert await router.leases_held() == 0


async def _route(router: RouterHandle, request: pb.ChatRequest, stream: bool) -> Any:
    """The route of `request`'s answer, called unary or streamed."""
    if not stream:
        return (await router.stub.Chat(request)).route
    events = await _all(router.stub.ChatStream(pb.ChatStreamRequest(params=request.params)))
    assert events[-1].HasField("summary")
    return events[-1].summary.route


async def test_too_long_for_the_small_one_with_the_large_one_busy_is_no_capacity(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(small_then_large(fake.base_url, queue_timeout_s=0))
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="small")
    fake.state.set_scenario(Scenario(chunks=10, held_after_chunks=2), model="large")
    busy = router.stub.ChatStream(pb.ChatStreamRequest(params=ask("alpha/large").params))
    reading = asyncio.ensure_future(_all(busy))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the large one's key busy")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask("chat"))
    fake.state.release()
    await reading

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "NO_CAPACITY"
    assert details.retry_after_s is not None  # its key frees when a call ends: soon
    assert fake.state.count(model="large") == 1  # the busy stream's only
    assert await router.leases_held() == 0


async def test_too_long_for_the_small_one_with_the_large_one_cooling_says_when(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(small_then_large(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="small")
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="large")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask("alpha/large", "another"))  # cools it for everyone: 15 s
    clock.advance(5.0)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask("chat"))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "NO_CAPACITY"
    assert details.retry_after_s == pytest.approx(10.0, abs=0.5)
    clock.advance(10.0)
    assert (await router.stub.Chat(ask("chat"))).route.deployment == "alpha/large"


async def _all(call: Any) -> list[Any]:
    return [event async for event in call]


async def test_too_long_for_the_small_one_after_the_large_one_failed_is_that_failure(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The large one (first in the order the strategy drew) failed on its own: that failure,
    retryable, is the caller's answer, not the smaller one's context-length 400."""
    config = small_then_large(fake.base_url)
    config["models"]["chat"]["deployments"].reverse()
    router = await start_router(config)
    fake.state.set_scenario(Scenario.server_error(503), model="large")
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="small")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask("chat"))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (details.reason, details.provider) == ("UPSTREAM_ERROR", "alpha")
    assert fake.state.count(model="small") == 1
