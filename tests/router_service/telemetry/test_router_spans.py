"""The router's trace of one request, from the in-memory exporter: the gRPC server span, which
is the request's span too (the routing decision, the outcome), one span per upstream attempt
with its reactions and its upstream HTTP call — for a fallback, a stream cancelled by its
caller, a stall."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import SYSTEM_CLOCK, ManualClock
from router_service.engine import RequestContext
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry import (
    RequestHandle,
    chat_span,
    client_observer,
    current,
    embed_span,
    server_interceptors,
    traced_transport,
)
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.helpers import advance_until_done
from tests.router_service.telemetry.spans import attrs, ended, events

SERVER_CHAT = "switchboard.v1.RouterService/Chat"
SERVER_STREAM = "switchboard.v1.RouterService/ChatStream"


def params(model: str = "chain", text: str = "hello") -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    return chat_pb2.ChatParams(model=model, messages=[message], max_tokens=64, temperature=0.2)


async def test_fallback_is_one_trace_with_a_span_per_attempt(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")

    response = await router.stub.Chat(pb.ChatRequest(params=params()))
    assert response.route.deployment == "beta/model-b"

    trace = await ended(captured, SERVER_CHAT)
    assert len(trace.trace_ids()) == 1
    server = trace.one(SERVER_CHAT)
    assert server.kind is SpanKind.SERVER
    assert attrs(server)["rpc.grpc.status_code"] == 0
    # The call's SERVER span is the request's: no span of its own between it and the attempts.
    request, got = server, attrs(server)
    assert got["rpc.system"] == "grpc" and got["rpc.method"] == "Chat"
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.request.model"] == "chain"
    assert got["gen_ai.request.max_tokens"] == 64
    assert got["gen_ai.request.temperature"] == pytest.approx(0.2)
    assert got["gen_ai.provider.name"] == "openai"
    assert got["gen_ai.response.model"] == "model-b"
    assert got["gen_ai.response.finish_reasons"] == ("stop",)
    assert got["gen_ai.usage.input_tokens"] > 0 and got["gen_ai.usage.output_tokens"] > 0
    assert got["switchboard.deployment"] == "beta/model-b" and "switchboard.provider" not in got
    assert (got["switchboard.attempts"], got["switchboard.outcome"]) == (2, "OK")
    assert got["switchboard.routing.strategy"] == "ordered"
    assert got["switchboard.session.sticky_hit"] is False
    plan = events(request)["switchboard.route.plan"]
    assert plan["switchboard.route.candidates"] == ("alpha/model-a", "beta/model-b")
    # Nothing excluded, no scores (ordered strategy), not forced: left out rather than empty.
    assert "switchboard.route.excluded" not in plan
    assert "switchboard.route.scored" not in plan and "switchboard.route.forced" not in plan

    failed, served = trace.children(request)
    assert (failed.name, served.name) == ("chat model-a", "chat model-b")
    assert failed.kind is SpanKind.CLIENT
    first = attrs(failed)
    assert first["switchboard.attempt.outcome"] == "UPSTREAM_ERROR"
    assert first["switchboard.upstream.status"] == 502
    assert first["switchboard.key.fingerprint"].startswith("fp_")
    assert first["switchboard.attempt.index"] == 1
    assert first["server.address"] == "127.0.0.1"
    assert first["error.type"] == "UPSTREAM_ERROR"
    assert first["switchboard.cooldown.applied"] is True
    assert first["switchboard.session.ban_applied"] is True  # model-skip for this session
    assert failed.status.status_code is StatusCode.ERROR
    decided = events(failed)
    assert decided["switchboard.deployment.cooldown"]["switchboard.deployment"] == "alpha/model-a"
    assert "switchboard.session.skip" in decided
    got = attrs(served)
    assert (got["switchboard.attempt.outcome"], got["switchboard.attempt.index"]) == ("OK", 2)
    assert got["switchboard.provider"] == "beta"  # said here, not on the request span
    assert "switchboard.upstream.status" not in got  # its 200: http.response.status_code
    assert served.status.status_code is StatusCode.UNSET
    for attempt, status in ((failed, 502), (served, 200)):
        assert trace.children(attempt) == []  # the attempt's span is its HTTP call's
        assert attrs(attempt)["http.response.status_code"] == status
        assert attrs(attempt)["url.full"] == f"{fake.base_url}/chat/completions"  # no query


async def test_a_deployment_cooldown_says_how_long_the_upstream_asked_for(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(503, retry_after="40"), model="model-a")

    await router.stub.Chat(pb.ChatRequest(params=params()))

    trace = await ended(captured, SERVER_CHAT)
    failed, _ = trace.children(trace.one(SERVER_CHAT))
    cooled = events(failed)["switchboard.deployment.cooldown"]
    assert cooled["switchboard.cooldown.seconds"] == 40.0  # its Retry-After, not transient_s


async def test_excluded_candidates_and_why_are_on_the_plan(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(503), model="model-a")
    await router.stub.Chat(pb.ChatRequest(params=params(text="first")))  # cools alpha/model-a
    captured.clear()

    await router.stub.Chat(pb.ChatRequest(params=params(text="second")))

    trace = await ended(captured, SERVER_CHAT)
    plan = events(trace.one(SERVER_CHAT))["switchboard.route.plan"]
    assert plan["switchboard.route.candidates"] == ("beta/model-b",)
    assert plan["switchboard.route.excluded"] == ("alpha/model-a",)
    assert plan["switchboard.route.excluded_reasons"] == ("cooldown",)


async def test_a_stream_cancelled_by_its_caller_ends_every_span_cancelled(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    # Held mid-stream: under way when cancelled, however slow the machine (500 pieces 20 ms
    # apart were 10 s to do it in).
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=5))

    call = router.stub.ChatStream(pb.ChatStreamRequest(params=params()))
    chunks = 0
    async for event in call:
        chunks += event.WhichOneof("event") == "chunk"
        if chunks == 3:
            break
    call.cancel()

    trace = await ended(captured, SERVER_STREAM, "chat model-a")
    server = trace.one(SERVER_STREAM)
    assert attrs(server)["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.status.status_code is StatusCode.ERROR  # not a silent OK
    request = server  # the request's span too
    assert attrs(request)["switchboard.outcome"] == "CANCELLED"
    assert attrs(request)["error.type"] == "CANCELLED"
    assert attrs(request)["switchboard.stream"] is True
    assert attrs(request)["gen_ai.response.time_to_first_chunk"] > 0
    assert request.status.status_code is StatusCode.ERROR
    attempt = trace.one("chat model-a")
    assert attempt.parent is not None and attempt.parent.span_id == request.context.span_id
    assert attrs(attempt)["switchboard.attempt.outcome"] == "CANCELLED"
    assert attrs(attempt)["http.response.status_code"] == 200  # its call, on its span
    assert attempt.status.status_code is StatusCode.ERROR
    # Each span ends with what it covers: the attempt (its call) with the stream.
    assert attempt.end_time is not None
    assert attempt.end_time <= (request.end_time or 0)


async def test_a_stall_mid_stream_is_the_attempts_outcome_with_its_reaction(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    clock = ManualClock()  # the stall window runs on it, moved once the upstream is stalled
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 0.2}
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(stall_after_chunks=2), model="model-a")

    async def read() -> list[str | None]:
        request = pb.ChatStreamRequest(params=params())
        return [event.WhichOneof("event") async for event in router.stub.ChatStream(request)]

    streaming = asyncio.ensure_future(read())
    await fake.state.wait_for(
        lambda: [call.outcome for call in fake.state.calls(model="model-a")] == ["stalled"]
    )
    await advance_until_done(clock, 0.3, streaming, what="the stall window ended the stream")
    assert streaming.result()[-1] == "error"

    trace = await ended(captured, SERVER_STREAM)
    request = trace.one(SERVER_STREAM)  # the request's span too
    assert attrs(request)["switchboard.outcome"] == "STALLED"
    # The call ended OK (the stream told its caller its error); the request failed: the span
    # says the request's failure, not a silent OK.
    assert attrs(request)["rpc.grpc.status_code"] == 0
    assert attrs(request)["error.type"] == "STALLED"
    assert request.status.status_code is StatusCode.ERROR
    assert (request.status.description or "").startswith("STALLED: ")
    attempt = trace.one("chat model-a")
    assert attrs(attempt)["switchboard.attempt.outcome"] == "STALLED"
    # The reaction after the first chunk still lands on the attempt that stalled.
    assert "switchboard.deployment.cooldown" in events(attempt)


async def test_tracing_off_records_nothing_and_adds_no_interceptor(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    with TelemetryCapture(tracing=False) as capture:
        router = await start_router(base_config(fake.base_url))
        assert not current().tracing
        await router.stub.Chat(pb.ChatRequest(params=params()))
        assert capture.spans() == []
        assert server_interceptors() == [] and client_observer() is None


async def test_one_failed_request_is_an_error_trace(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(500))

    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(pb.ChatRequest(params=params()))

    trace = await ended(captured, SERVER_CHAT)
    server = trace.one(SERVER_CHAT)
    assert attrs(server)["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert server.status.status_code is StatusCode.ERROR
    # The request's span too: its outcome is the `error.type` (it says more than UNAVAILABLE)
    # and the status's message.
    assert attrs(server)["switchboard.outcome"] == "UPSTREAM_ERROR"
    assert attrs(server)["error.type"] == "UPSTREAM_ERROR"
    assert (server.status.description or "").startswith("UPSTREAM_ERROR: ")
    assert [s.name for s in trace.spans if s.kind is SpanKind.INTERNAL] == []  # no span of its own


def test_with_telemetry_off_every_helper_is_a_shared_no_op() -> None:
    assert not current().tracing and not current().metering  # nothing configured in tests
    ctx = RequestContext("chain", SYSTEM_CLOCK)
    request = chat_span(params(), ctx, stream=True)
    assert request is embed_span(embeddings_pb2.EmbeddingParams(model="e"), ctx)
    assert type(request) is RequestHandle  # no span, no clock read, no registration
    transport = httpx.AsyncHTTPTransport()
    assert traced_transport(transport) is transport
    assert server_interceptors() == [] and client_observer() is None


async def test_a_refused_caller_is_traced_too(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    clients = [{"name": "app", "key": "router-app-key"}]
    router = await start_router(base_config(fake.base_url, auth={"clients": clients}))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=params()), metadata=[("authorization", "x")])
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED

    trace = await ended(captured, SERVER_CHAT)
    server = trace.one(SERVER_CHAT)  # tracing sits outside authentication
    assert attrs(server)["rpc.grpc.status_code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert trace.children(server) == []  # refused before any routing
    assert "router-app-key" not in str(attrs(server)) + (server.status.description or "")


async def test_a_scoring_strategy_puts_its_sampled_scores_on_the_plan(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = base_config(fake.base_url)
    config["models"]["chain"]["strategy"] = "thompson"
    router = await start_router(config)

    await router.stub.Chat(pb.ChatRequest(params=params()))

    trace = await ended(captured, SERVER_CHAT)
    plan = events(trace.one(SERVER_CHAT))["switchboard.route.plan"]
    assert sorted(plan["switchboard.route.scored"]) == ["alpha/model-a", "beta/model-b"]
    scores = plan["switchboard.route.scores"]
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)  # Beta samples
    assert "switchboard.route.forced" not in plan


async def test_a_call_sampled_out_by_its_caller_records_nothing_and_streams_through(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """The caller's trace was not sampled (flags 00): the router's parent-based sampler drops
    every span of it, and the upstream responses go through as they came (no span to end)."""
    router = await start_router(base_config(fake.base_url))
    not_sampled = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),)
    response = await router.stub.Chat(pb.ChatRequest(params=params()), metadata=not_sampled)
    assert response.completion.choices[0].message.text
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=params()), metadata=not_sampled)
    kinds = [event.WhichOneof("event") async for event in call]
    assert kinds[0] == "route" and kinds[-1] == "summary" and "chunk" in kinds
    await router.stub.Chat(pb.ChatRequest(params=params()))  # sampled: recorded as ever
    trace = await ended(captured, SERVER_CHAT)
    assert len(trace.trace_ids()) == 1  # the sampled call's alone
    assert 0x0AF7651916CD43DD8448EB211C80319C not in trace.trace_ids()
    assert trace.named(SERVER_STREAM) == [] and len(trace.named(SERVER_CHAT)) == 1
