"""The edge calling the router in-process (`switchboard serve`'s assembly: `create_app(local=
RouterServer.in_process)`), through the official SDK: what an OpenAI caller sees is what it
sees over two processes; a failover is one trace. (A caller that leaves mid-stream leaves
nothing behind: `test_stream_cleanup.py`, in-process too.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from clients import LocalChannel, RouterClient
from http_edge import EdgeSettings
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import BODY, MESSAGES, OpenStack, StartEdge
from tests.e2e.test_tracing import CHAT, HTTP, child
from tests.http_edge.harness import start_edge as start_edge_server
from tests.http_edge.harness import stop_edge
from tests.router_service.telemetry.spans import attrs, ended, events


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


async def test_chat_streams_embeddings_and_errors_answer_in_one_process(
    open_stack: OpenStack,
) -> None:
    stack = await open_stack(in_process=True)
    sdk = stack.sdk
    answer = await sdk.chat.completions.create(model="chain", messages=MESSAGES)
    assert answer.choices[0].message.content == "Echo: tell me a story"
    stream = await sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in pieces)
    vectors = await sdk.embeddings.create(model="embedder", input=["a", "b"])
    assert [len(v.embedding) for v in vectors.data] == [8, 8]
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200


async def test_a_failover_in_one_process_is_one_trace(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    stack = await open_stack(in_process=True)
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")

    raw = await stack.sdk.chat.completions.with_raw_response.create(
        model="chain", messages=MESSAGES
    )
    assert raw.headers["x-switchboard-attempts"] == "2"
    assert raw.parse().choices[0].message.content

    trace = await ended(captured, HTTP, "chat model-b")
    assert len(trace.trace_ids()) == 1
    edge = trace.one(HTTP)
    # No CLIENT span for the in-process hop, no SERVER span for a call that succeeds, and no
    # request span of its own: the edge's span says what it would.
    assert trace.named(CHAT) == [] and trace.named("chat chain") == []
    request = attrs(edge)
    assert request["gen_ai.operation.name"] == "chat" and request["switchboard.attempts"] == 2
    assert request["switchboard.outcome"] == "OK" and request["gen_ai.request.model"] == "chain"
    assert request["switchboard.deployment"] == "beta/model-b" and "error.type" not in request
    assert request["http.response.status_code"] == 200
    assert "switchboard.route.plan" in events(edge)
    attempts = trace.children(edge)
    assert [attrs(a)["switchboard.attempt.outcome"] for a in attempts] == ["UPSTREAM_ERROR", "OK"]


async def test_the_edge_hands_its_span_to_the_router_in_one_process(
    captured: TelemetryCapture, open_stack: OpenStack
) -> None:
    """The caller's `traceparent` is honoured; from the edge on the context is handed over as it
    is (no `traceparent` written and parsed): the router's span is the edge's child, a parent in
    its own process."""
    stack = await open_stack(in_process=True)
    trace_id, caller_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    headers = {"traceparent": f"00-{trace_id}-{caller_span}-01"}

    await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES, extra_headers=headers)

    trace = await ended(captured, HTTP, "chat model-a")
    assert trace.trace_ids() == {int(trace_id, 16)}
    edge = trace.one(HTTP)
    assert edge.parent is not None and edge.parent.span_id == int(caller_span, 16)
    assert edge.parent.is_remote
    assert attrs(edge)["gen_ai.request.model"] == "chain"  # the request's span is the edge's
    attempt = child(trace, edge, "chat model-a", SpanKind.CLIENT)
    assert attempt.parent is not None and not attempt.parent.is_remote  # handed, not extracted
    assert attempt.kind is SpanKind.CLIENT and attrs(attempt)["http.response.status_code"] == 200
    assert attempt.context.trace_id == int(trace_id, 16)


async def test_an_in_process_call_that_fails_has_its_server_span(
    captured: TelemetryCapture, open_stack: OpenStack
) -> None:
    """What a successful in-process call's SERVER span said the edge's and the request's spans
    say; a failed call's code and message only it says: it is made for a call that fails."""
    stack = await open_stack(in_process=True)

    with pytest.raises(openai.NotFoundError):
        await stack.sdk.chat.completions.create(model="no-such-model", messages=MESSAGES)

    trace = await ended(captured, HTTP, CHAT)
    edge = trace.one(HTTP)
    server = child(trace, edge, CHAT, SpanKind.SERVER)
    assert attrs(server)["rpc.grpc.status_code"] == 5  # NOT_FOUND
    assert attrs(server)["error.type"] == "NOT_FOUND"
    assert attrs(server)["network.peer.address"] == "in-process"
    assert server.status.status_code is StatusCode.ERROR
    assert "no-such-model" in (server.status.description or "")
    assert edge.start_time is not None and server.start_time is not None
    assert edge.end_time is not None and server.end_time is not None
    assert edge.start_time <= server.start_time <= server.end_time <= edge.end_time
    assert trace.children(server) == []  # the request's spans are the edge's children


async def test_request_guardrails_are_named_on_a_span_in_one_process(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The rules that found something in a request (screened before the request span starts,
    while the call's SERVER span was current) are named (`switchboard.guardrails`) in one
    process too: on the request span of a call that succeeds, on the SERVER span of a call a
    rule blocks."""
    rules = [
        {"name": "no-credentials", "detect": ["api_key"], "action": "block"},
        {"name": "pii", "detect": ["email"], "action": "redact"},
    ]
    router = await start_router(base_config(fake.base_url, guardrails=rules))
    edge = await start_edge(router, in_process=True)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=20
    ) as sdk:
        mail = [{"role": "user", "content": "I am jane@example.com"}]
        await sdk.chat.completions.create(model="chain", messages=mail)  # type: ignore[arg-type]
        key = [{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(model="chain", messages=key)  # type: ignore[arg-type]

    trace = await ended(captured, HTTP, CHAT)
    served, refused = sorted(trace.named(HTTP), key=lambda s: s.start_time or 0)
    assert attrs(served)["switchboard.guardrails"] == ("pii",)  # the request's span: the edge's
    assert "switchboard.guardrails" not in attrs(refused)
    blocked = trace.one(CHAT)
    assert attrs(blocked)["switchboard.guardrails"] == ("no-credentials",)
    assert attrs(blocked)["rpc.grpc.status_code"] == 3  # INVALID_ARGUMENT


async def test_a_caller_sampled_out_is_sampled_out_in_the_router_in_one_process(
    captured: TelemetryCapture, open_stack: OpenStack
) -> None:
    stack = await open_stack(in_process=True)
    not_sampled = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}

    await stack.sdk.chat.completions.create(
        model="chain", messages=MESSAGES, extra_headers=not_sampled
    )
    await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES)  # sampled

    trace = await ended(captured, HTTP, "chat model-a")
    assert len(trace.trace_ids()) == 1 and len(trace.named(HTTP)) == 1
    assert int("0af7651916cd43dd8448eb211c80319c", 16) not in trace.trace_ids()
    assert trace.one(HTTP).parent is None  # no `traceparent`: the edge's span is the root


async def _over_the_limit(router: RouterHandle, in_process: bool) -> list[Any]:
    """What an OpenAI caller sees of a small answer, then of answers over the edge's receive
    limit (4 KiB: its router client's `grpc.max_receive_message_length`), unary and streamed,
    with the edge calling the router over its port or in-process."""
    options = [("grpc.max_receive_message_length", 4096)]
    local = router.server.in_process if in_process else None
    channel = LocalChannel(local) if local is not None else None
    target = "in-process" if in_process else router.server.address
    big = [{"role": "user", "content": "a" * 8192}]
    async with RouterClient(target, channel=channel, options=options) as client:
        edge = await start_edge_server(EdgeSettings(router_target=target), client, local=local)
        try:
            async with httpx.AsyncClient(base_url=edge.base_url, timeout=20) as http:
                small = await http.post("/v1/chat/completions", json={**BODY, "stream": False})
                unary = await http.post(
                    "/v1/chat/completions", json={**BODY, "stream": False, "messages": big}
                )
                streamed = await http.post("/v1/chat/completions", json={**BODY, "messages": big})
        finally:
            await stop_edge(edge)
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    # Each event's delta or error (not its id and time, which differ from call to call).
    said = [e if e == "[DONE]" else _delta_or_error(json.loads(e)) for e in events]
    return [small.status_code, unary.status_code, unary.json(), streamed.status_code, said]


def _delta_or_error(event: dict[str, Any]) -> Any:
    return event["error"] if "error" in event else event["choices"][0]["delta"]


async def test_an_answer_over_the_receive_limit_fails_in_process_as_over_the_wire(
    router: RouterHandle,
) -> None:
    """`LocalChannel` holds answers to its caller's `grpc.max_receive_message_length` as
    grpc's channel does, unary and each streamed message: the same code and details, which
    the edge answers with the same OpenAI error (a 413; mid-stream, an error event after the
    chunks before the large one)."""
    wire = await _over_the_limit(router, in_process=False)
    local = await _over_the_limit(router, in_process=True)
    assert local == wire
    small, unary, refused, stream, events = local
    assert (small, unary, stream) == (200, 413, 200)
    assert refused["error"]["code"] == "message_too_large"
    assert events[1] == {"content": "Echo: "}  # what came before the large message
    assert events[-2]["code"] == "message_too_large"
