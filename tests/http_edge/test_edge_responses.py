"""`POST /v1/responses` against a stub router: what the edge forwards (the chat route's
machinery), and the stream endings a real upstream rarely produces on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import orjson

from clients import ErrorDetails
from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge import edge_messages as m
from tests.http_edge.harness import StubRouter, abort_with


def events(body: bytes) -> list[dict[str, Any]]:
    """The data of each named event; comments (keepalives) left out."""
    out = []
    for block in body.split(b"\n\n"):
        if block.startswith(b"event: "):
            out.append(orjson.loads(block.split(b"\ndata: ", 1)[1]))
    return out


async def test_the_call_carries_the_chat_routes_metadata_and_session(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def chat(request: rs.ChatRequest, context: grpc.aio.ServicerContext) -> Any:
        return rs.ChatResponse(completion=m.completion("Hi!"), route=m.route(attempts=2))

    stub.on_chat = chat
    headers = {"authorization": "Bearer sk-x", "x-session-id": "s-1", "x-request-id": "r-1"}
    answer = await http.post("/v1/responses", json={"model": "m", "input": "hi"}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["output"][0]["content"][0]["text"] == "Hi!"
    assert answer.headers["x-switchboard-attempts"] == "2"
    [call] = stub.calls
    assert call.method == "Chat" and call.request.routing.session_id == "s-1"
    assert call.metadata["authorization"] == "Bearer sk-x"
    assert call.metadata["x-request-id"] == "r-1"


async def test_summary_usage_counts_when_no_chunk_carried_one(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        for message in (m.heartbeat(), m.route_message(), m.chunk("Hel"), m.heartbeat()):
            yield message
        yield m.chunk("lo", finish=True)
        yield m.summary()

    stub.on_chat_stream = stream
    answer = await http.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    assert answer.status_code == 200
    assert b"\n\n: keepalive\n\n" in answer.content  # the heartbeat after the commit
    final = events(answer.content)[-1]
    assert final["type"] == "response.completed"
    assert final["response"]["usage"]["total_tokens"] == 7
    assert final["response"]["output"][0]["content"][0]["text"] == "Hello"
    assert stub.calls[0].request.params.stream_options.include_usage is True


async def test_a_stream_the_router_cut_short_ends_failed(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield m.route_message()
        yield m.chunk("Hel")  # and no summary: truncated

    stub.on_chat_stream = stream
    answer = await http.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    *_, error, failed = events(answer.content)
    assert error["type"] == "error" and error["code"] == "stream_truncated"
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"]["code"] == "server_error"


async def test_a_stream_error_before_the_first_chunk_is_an_http_error(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        # As the router says it (pushback -1): not tried again, like its own answers.
        failed = "all deployments failed"
        details = ErrorDetails(grpc.StatusCode.UNAVAILABLE, failed, "UPSTREAM_ERROR")
        await abort_with(context, details)
        yield m.route_message()  # pragma: no cover

    stub.on_chat_stream = stream
    answer = await http.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    assert answer.status_code == 503
    assert answer.json()["error"]["message"]
    assert len(stub.calls) == 1  # the router's own answer: not tried again


async def test_a_response_the_router_refuses_to_store_is_answered_unstored(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    # The edge stores under ids it makes itself, so ALREADY_EXISTS should never come back; if
    # it does, the caller still gets the answer, with `store: false` (as for any failed store).
    async def chat(request: rs.ChatRequest, context: grpc.aio.ServicerContext) -> Any:
        return rs.ChatResponse(completion=m.completion("Hi!"))

    stored: list[str] = []

    async def refuse(request: rs.StoreResponseRequest, context: grpc.aio.ServicerContext) -> Any:
        stored.append(request.response.id)
        details = ErrorDetails(
            grpc.StatusCode.ALREADY_EXISTS,
            f"A response with id '{request.response.id}' is already stored.",
            "RESPONSE_EXISTS",
            openai_type="invalid_request_error",
            openai_param="response.id",
        )
        await abort_with(context, details)

    stub.on_chat, stub.on_store_response = chat, refuse
    answer = await http.post("/v1/responses", json={"model": "m", "input": "hi"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["output"][0]["content"][0]["text"], body["store"]) == ("Hi!", False)
    assert stored == [body["id"]]
