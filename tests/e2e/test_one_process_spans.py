"""In one process (`switchboard serve`) the edge's HTTP SERVER span is the router's request span
too: what the request says (its outcome, attempts, usage, routing) goes on it. What an operator
must still see: a failed request's outcome (not overwritten by the HTTP status; an error status
only where HTTP's conventions want one: not for a 4xx), the outcome of
a request whose caller left before it ended, a request that outlives its HTTP call (a
background response) as a span of its own with its attempts under it, and each of several
router calls of one HTTP request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from clients import LocalChannel, RouterClient, RouterError
from clients.switchboard.v1 import router_service_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry import client_observer
from router_service.telemetry._state import current
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.e2e.background import settled
from tests.e2e.stream_harness import (
    BODY,
    MESSAGES,
    OpenStack,
    StartEdge,
    chat_params,
    leave_after,
)
from tests.e2e.test_tracing import CHAT, HTTP, child
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_state, redis_url
from tests.router_service.telemetry.spans import Trace, attrs, ended

__all__ = ["redis_prefix", "redis_url"]  # fixtures


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


async def test_a_failed_request_keeps_its_outcome_on_the_edge_span(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """Every candidate answers 502: the edge's span says the router's outcome and message, not
    only the HTTP status it became."""
    stack = await open_stack(in_process=True)
    fake.state.set_scenario(Scenario.server_error(502))

    with pytest.raises(openai.APIStatusError):
        await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES)

    trace = await ended(captured, HTTP, CHAT, "chat model-b")
    edge = trace.one(HTTP)
    said = attrs(edge)
    assert said["http.response.status_code"] >= 500
    assert said["switchboard.outcome"] == said["error.type"] == "UPSTREAM_ERROR"
    assert said["switchboard.attempts"] == 2
    assert edge.status.status_code is StatusCode.ERROR
    assert (edge.status.description or "").startswith("UPSTREAM_ERROR: ")
    assert trace.named("chat chain") == []
    attempts = [s for s in trace.children(edge) if s.kind is SpanKind.CLIENT]
    assert [a.name for a in attempts] == ["chat model-a", "chat model-b"]


async def test_a_stream_its_caller_leaves_says_it_was_cancelled(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """The caller leaves mid-stream: the request's CANCELLED is said, on the edge's span or, if
    that span ended first, on a request span of its own from the call's start."""
    stack = await open_stack(in_process=True)
    fake.state.set_scenario(Scenario(chunks=50, held_after_chunks=8))

    stream = await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    await leave_after(stream, 5)

    trace = await ended(captured, HTTP, "chat model-a")
    edge = trace.one(HTTP)
    attempt = trace.one("chat model-a")
    assert attrs(attempt)["switchboard.attempt.outcome"] == "CANCELLED"
    own = trace.named("chat chain")
    request = own[0] if own else edge
    assert attrs(request)["switchboard.outcome"] == "CANCELLED"
    assert attrs(request)["gen_ai.request.model"] == "chain"
    assert attrs(request)["gen_ai.response.time_to_first_chunk"] > 0
    # A request span of its own is failed CANCELLED; the edge's, which HTTP error rates read,
    # is not failed by a caller that left (`test_a_stream_its_caller_leaves_fails_no_edge_span`).
    wanted = StatusCode.ERROR if own else StatusCode.UNSET
    assert request.status.status_code is wanted
    if own:  # made at the request's end, under the edge's span, from the call's start
        assert request.parent is not None and request.parent.span_id == edge.context.span_id
        assert (edge.start_time or 0) <= (request.start_time or 0) <= (attempt.start_time or 0)


@pytest.mark.parametrize("in_process", [True, False], ids=["one process", "two processes"])
async def test_a_stream_its_caller_leaves_fails_no_edge_span(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream, in_process: bool
) -> None:
    """A caller that leaves a stream after its 200 fails nothing on the edge's SERVER span, in
    one process (where it is the request's span too, which says the request's CANCELLED as its
    `error.type`) as over two: error rates read from SERVER spans are the same either way."""
    stack = await open_stack(in_process=in_process)
    fake.state.set_scenario(Scenario(chunks=50, held_after_chunks=8))

    stream = await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    await leave_after(stream, 5)

    trace = await ended(captured, HTTP, "chat model-a")
    edge = trace.one(HTTP)
    assert attrs(edge)["http.response.status_code"] == 200
    assert edge.status.status_code is StatusCode.UNSET
    assert attrs(trace.one("chat model-a"))["switchboard.attempt.outcome"] == "CANCELLED"


async def test_a_stream_failed_upstream_is_not_said_cancelled_by_its_caller(
    captured: TelemetryCapture,
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """The upstream breaks mid-stream: the caller gets the error event, and the edge closes its
    response there, which cancels the router's call while the router may still be cleaning up
    (on Redis, giving the lease back is a round trip). The stream's outcome is its upstream
    error, not a `CANCELLED` "cancelled by the caller" on the edge's span (and in the
    request metrics): the caller left nothing."""
    config = base_config(fake.base_url)
    config["state"] = redis_state(redis_url, redis_prefix)
    router = await start_router(config)
    edge = await start_edge(router, in_process=True)
    fake.state.set_scenario(Scenario(chunks=10, reset_after_chunks=3))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        stream = await sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError):
            async for _chunk in stream:
                pass

    async def said() -> bool:  # on the edge's span, or on one of its own if that ended first
        return any("switchboard.outcome" in attrs(s) for s in captured.spans())

    await ended(captured, HTTP)
    await eventually(said, within=5.0, what="the request's outcome")
    trace = Trace(captured.spans())
    (request,) = [s for s in trace.spans if "switchboard.outcome" in attrs(s)]
    outcome = attrs(request)
    assert outcome["switchboard.outcome"] == outcome["error.type"] == "UPSTREAM_ERROR"
    assert "cancelled by the caller" not in (request.status.description or "")
    # A failure after a 200's first event is the server's (HTTP's conventions: "another error").
    assert request.status.status_code is StatusCode.ERROR
    (attempt,) = [s for s in trace.spans if s.kind is SpanKind.CLIENT]
    assert attrs(attempt)["switchboard.attempt.outcome"] == "UPSTREAM_ERROR"
    counted = captured.points("switchboard.requests")
    assert [labels["switchboard.outcome"] for labels, _ in counted] == ["UPSTREAM_ERROR"]


async def test_a_background_response_has_a_request_span_of_its_own_in_one_process(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A background response runs after its HTTP call answered: its chat is a request span of
    its own (the edge's span ends first), with its attempt under it."""
    router = await start_router(base_config(fake.base_url, responses={}), clock=ManualClock())
    edge = await start_edge(router, in_process=True)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        started = await sdk.responses.create(model="chain", input="hello", background=True)
        final = await settled(sdk, started.id, router.server)
    assert final.status == "completed"

    trace = await ended(captured, "POST /v1/responses", "chat chain", "chat model-a")
    posted = trace.one("POST /v1/responses")
    request = child(trace, posted, "chat chain", SpanKind.INTERNAL)
    assert attrs(request)["switchboard.outcome"] == "OK"
    child(trace, request, "chat model-a", SpanKind.CLIENT)
    assert "switchboard.outcome" not in attrs(posted)


async def test_a_unary_call_its_caller_leaves_has_its_request_span_after_all(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """The caller leaves while the upstream holds the answer: the edge's span ends (499) before
    the router's request does, so the request's end is said on a span of its own, made then
    under the edge's from the call's start: its CANCELLED is not lost."""
    stack = await open_stack(in_process=True)
    fake.state.hold()
    body = {**BODY, "stream": False}
    call = asyncio.create_task(stack.http.post("/v1/chat/completions", json=body))
    try:
        await fake.state.wait_for(lambda: fake.state.in_flight == 1, what="a held call")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        trace = await ended(captured, HTTP, "chat chain", "chat model-a")
    finally:
        fake.state.release()
    edge = trace.one(HTTP)
    assert attrs(edge)["http.response.status_code"] == 499
    assert attrs(edge)["gen_ai.request.model"] == "chain"  # said while it was the request's
    request = child(trace, edge, "chat chain", SpanKind.INTERNAL)
    said = attrs(request)
    assert said["switchboard.outcome"] == said["error.type"] == "CANCELLED"
    assert said["gen_ai.request.model"] == "chain" and said["switchboard.attempts"] == 1
    assert request.status.status_code is StatusCode.ERROR
    attempt = child(trace, edge, "chat model-a", SpanKind.CLIENT)  # started under the edge's
    assert (edge.start_time or 0) <= (request.start_time or 0) <= (attempt.start_time or 0)


async def test_router_calls_made_together_have_request_spans_of_their_own(
    captured: TelemetryCapture, open_stack: OpenStack
) -> None:
    """A legacy completion of two prompts is two chat calls made together in one HTTP request:
    neither is the HTTP request, so each is a request span of its own under the edge's span
    (the edge's span does not say one prompt's usage as the whole request's)."""
    stack = await open_stack(in_process=True)

    answer = await stack.sdk.completions.create(model="chain", prompt=["one", "two"])
    assert len(answer.choices) == 2

    await ended(captured, "POST /v1/completions")
    trace = await spans_named(captured, "chat chain", 2)
    edge = trace.one("POST /v1/completions")
    assert "switchboard.outcome" not in attrs(edge)
    assert "gen_ai.usage.input_tokens" not in attrs(edge)
    own = [s for s in trace.children(edge) if s.name == "chat chain"]
    assert len(own) == 2
    for request in own:
        said = attrs(request)
        assert said["switchboard.outcome"] == "OK" and said["switchboard.attempts"] == 1
        assert said["gen_ai.request.model"] == "chain"
    attempts = [s for s in trace.spans if s.name == "chat model-a"]
    parents = sorted(a.parent.span_id for a in attempts if a.parent is not None)
    assert parents == sorted(r.context.span_id for r in own)


async def test_a_prompt_cancelled_because_another_failed_is_not_the_requests_outcome(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """Two prompts made together: one stalls upstream, the other's every candidate fails, so
    the edge answers 503 and cancels the stalled one. Nobody left: the edge's span says the
    503, not a `CANCELLED` "cancelled by the caller" its sibling's cancellation left on it; the
    prompts' own spans say what happened to each."""
    stack = await open_stack(in_process=True)
    fake.state.set_scenario(Scenario.stall(times=1), model="model-a")  # the first call to come
    fake.state.set_scenario(Scenario.server_error(500))  # every other call

    with pytest.raises(openai.APIStatusError) as failed:
        await stack.sdk.completions.create(model="chain", prompt=["one", "two"])
    assert failed.value.status_code == 503

    await ended(captured, "POST /v1/completions")
    trace = await spans_named(captured, CHAT, 2)  # both calls failed: a SERVER span each
    edge = trace.one("POST /v1/completions")
    said = attrs(edge)
    assert said["http.response.status_code"] == 503
    assert said["error.type"] == "503" and "switchboard.outcome" not in said
    assert edge.status.status_code is StatusCode.ERROR
    assert "cancelled by the caller" not in (edge.status.description or "")
    trace = await spans_named(captured, "chat chain", 2)
    outcomes = sorted(attrs(s)["switchboard.outcome"] for s in trace.named("chat chain"))
    assert outcomes == ["CANCELLED", "UPSTREAM_ERROR"]


async def spans_named(captured: TelemetryCapture, name: str, count: int) -> Trace:
    """The captured spans, once `count` spans named `name` have ended."""

    async def done() -> bool:
        return len([s for s in captured.spans() if s.name == name]) >= count

    await eventually(done, within=5.0, what=f"{count} spans named {name!r}")
    return Trace(captured.spans())


# A request refused for the caller's fault, in the router's words (its outcome) and HTTP's.
CALLERS_FAULTS = [
    pytest.param("chain", Scenario(status=400), 400, "BAD_REQUEST", id="400"),
    pytest.param("no-such-model", None, 404, "MODEL_NOT_FOUND", id="404"),
    pytest.param("chain", Scenario.rate_limited(), 429, "RATE_LIMITED", id="429"),
]


@pytest.mark.parametrize("in_process", [True, False], ids=["one process", "two processes"])
@pytest.mark.parametrize(("model", "scenario", "status", "outcome"), CALLERS_FAULTS)
async def test_a_request_refused_for_the_callers_fault_leaves_the_edge_span_unset(
    captured: TelemetryCapture,
    open_stack: OpenStack,
    fake: FakeUpstream,
    model: str,
    scenario: Scenario | None,
    status: int,
    outcome: str,
    in_process: bool,
) -> None:
    """HTTP's conventions leave a SERVER span's status unset for a 4xx. Over two processes the
    edge's span has none, and the router's request span (its call's gRPC SERVER span) is failed
    with its outcome; in one process the edge's span, the request's too, says that outcome
    (`error.type`) but has no error status either."""
    stack = await open_stack(in_process=in_process)
    if scenario is not None:
        fake.state.set_scenario(scenario)

    with pytest.raises(openai.APIStatusError) as refused:
        await stack.sdk.chat.completions.create(model=model, messages=MESSAGES)
    assert refused.value.status_code == status

    async def outcome_said() -> bool:  # the edge's CLIENT span of CHAT may end before the router's
        return any("switchboard.outcome" in attrs(s) for s in captured.spans())

    await ended(captured, HTTP)
    await eventually(outcome_said, what="a span with the request's outcome")
    trace = Trace(captured.spans())
    edge = trace.one(HTTP)
    assert attrs(edge)["http.response.status_code"] == status
    assert edge.status.status_code is StatusCode.UNSET
    (request,) = [s for s in trace.spans if "switchboard.outcome" in attrs(s)]
    assert attrs(request)["switchboard.outcome"] == attrs(request)["error.type"] == outcome
    if in_process:
        assert request.context.span_id == edge.context.span_id
    else:
        assert (request.name, request.kind) == (CHAT, SpanKind.SERVER)
        assert request.parent is not None and request.parent.span_id == edge.context.span_id
        assert request.status.status_code is StatusCode.ERROR


async def test_a_callers_own_span_handed_over_is_failed_by_the_router(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A span of no server's (a caller's own, calling through a `LocalChannel`) has nobody to
    decide its status at its end: the router's failed request marks it failed itself."""
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(502))
    channel = LocalChannel(router.server.in_process)
    observer = client_observer(in_process=True)
    async with RouterClient("in-process", channel=channel, observer=observer) as client:
        with current().tracer.start_as_current_span("batch job"):
            with pytest.raises(RouterError):
                await client.chat(router_service_pb2.ChatRequest(params=chat_params()), timeout=5)

    own = (await ended(captured, "batch job")).one("batch job")
    said = attrs(own)
    assert said["switchboard.outcome"] == said["error.type"] == "UPSTREAM_ERROR"
    assert own.status.status_code is StatusCode.ERROR


async def test_a_failed_in_process_calls_server_span_has_the_callers_request_id(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """In one process a call's SERVER span is made only should it fail (at its end): it carries
    the caller's `x-request-id` as the edge's span does, so a quoted id finds both."""
    stack = await open_stack(in_process=True)
    fake.state.set_scenario(Scenario.server_error(502))
    header = "http.request.header.x-request-id"

    with pytest.raises(openai.APIStatusError):
        await stack.sdk.chat.completions.create(
            model="chain", messages=MESSAGES, extra_headers={"x-request-id": "req-one-process"}
        )

    trace = await ended(captured, HTTP, CHAT, "chat model-b")
    assert attrs(trace.one(CHAT))[header] == attrs(trace.one(HTTP))[header] == ("req-one-process",)
