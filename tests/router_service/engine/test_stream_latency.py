"""The latency a deployment is measured with (the `latency` strategy's EWMA), a stream's (a chat's,
a media stream's) and a unary call's alike: from its own attempt, not from the request's start,
which holds the candidates (and the keys) that failed before it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import TypeVar

import orjson
import pytest

from clients.switchboard.v1 import chat_pb2, media_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config

pytestmark = pytest.mark.timeout(20)
T = TypeVar("T")


async def test_a_fallback_stream_is_not_measured_with_the_failed_candidate(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(base_config(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario(status=503), model="model-a")
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    request = pb.ChatStreamRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))
    fake.state.hold()
    call = router.stub.ChatStream(request)
    reading = asyncio.ensure_future(_all(call))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="alpha's call held")
    clock.advance(20.0)  # alpha keeps the request 20 s before its 503
    fake.state.release()
    events = await reading

    assert not [e for e in events if e.HasField("error")]
    alpha, beta = events[0].route.attempts
    assert alpha.outcome == routing_pb2.OUTCOME_UPSTREAM_ERROR
    assert beta.outcome == routing_pb2.OUTCOME_OK
    stats = router.runtime.stats
    assert stats.latency("beta/model-b") == 0.0  # the clock stood still during beta's stream
    assert stats.latency("alpha/model-a") is None  # a failure measures no latency


async def _all(call: AsyncIterable[T]) -> list[T]:
    return [event async for event in call]


async def test_a_fallback_media_stream_is_not_measured_with_the_failed_candidate(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(base_config(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario(status=503), model="model-a")
    fields = {"input": "hi there", "voice": "a", "stream_format": "sse"}
    params = media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_SPEECH,
        model="chain",
        params_json=orjson.dumps(fields).decode(),
    )
    fake.state.hold()
    call = router.stub.MediaStream(pb.MediaStreamRequest(params=params))
    reading = asyncio.ensure_future(_all(call))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="alpha's call held")
    clock.advance(20.0)
    fake.state.release()
    events = await reading

    assert events[-1].HasField("summary")
    assert [a.deployment for a in events[0].route.attempts] == ["alpha/model-a", "beta/model-b"]
    assert router.runtime.stats.latency("beta/model-b") == 0.0


async def test_a_unary_call_is_measured_from_its_own_attempt_not_the_keys_before_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A key's 429 that another key of the provider recovered is the key's, not the
    deployment's: neither its count nor its time is the deployment's (as for a stream)."""
    clock = ManualClock()
    router = await start_router(base_config(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario(status=429, times=1), model="model-a")
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    fake.state.hold()
    call = router.stub.Chat(
        pb.ChatRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first key's call held")
    clock.advance(20.0)  # the first key keeps the request 20 s before its 429
    fake.state.release()
    reply = await call

    first, second = reply.route.attempts
    assert first.outcome == routing_pb2.OUTCOME_RATE_LIMITED
    assert (second.deployment, second.outcome) == ("alpha/model-a", routing_pb2.OUTCOME_OK)
    assert router.runtime.stats.latency("alpha/model-a") == 0.0
