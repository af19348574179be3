"""Every failure reaches the caller as OpenAI's error JSON with the right HTTP status."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest

from clients import ErrorDetails
from clients._base import RETRY_POLICY
from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge import _admin
from tests.http_edge.edge_messages import chunk, completion
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def assert_openai_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert set(payload) == {"error"}
    error: dict[str, Any] = payload["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["code"] == code
    assert "Traceback" not in error["message"]
    return error


async def test_invalid_json_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        CHAT, content=b'{"model": ', headers={"content-type": "application/json"}
    )
    error = assert_openai_error(response, 400, "invalid_json")
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    assert error["message"].startswith("Invalid JSON body: ")


async def test_a_body_not_in_utf8_is_400_saying_so(
    http: httpx.AsyncClient, stub: StubRouter
) -> None:
    """A body in another encoding (Windows PowerShell 5.1's `Invoke-RestMethod` sends a string
    body as Latin-1 unless its content type names UTF-8; a declared charset is not read, as
    JSON has only UTF-8) is refused naming the byte, not as orjson's "surrogates not allowed"
    at line 1 column 1."""
    raw = '{"model": "m", "messages": [{"role": "user", "content": "café"}]}'.encode("latin-1")
    for content_type in ("application/json", "application/json; charset=iso-8859-1"):
        response = await http.post(CHAT, content=raw, headers={"content-type": content_type})
        error = assert_openai_error(response, 400, "invalid_json")
        at = raw.index(b"\xe9")
        assert error["message"] == (
            f"Invalid JSON body: it is not UTF-8 (byte 0xE9 at offset {at} is no UTF-8 "
            "character's). Send JSON encoded as UTF-8."
        )
    assert stub.calls == []


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"3"])
async def test_body_that_is_not_an_object_is_400(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post(CHAT, content=body)
    error = assert_openai_error(response, 400, "invalid_json")
    assert "must be a JSON object" in error["message"]


async def test_wrong_types_name_the_param(http: httpx.AsyncClient, stub: StubRouter) -> None:
    response = await http.post(CHAT, json={**BODY, "temperature": "hot"})
    error = assert_openai_error(response, 400, "invalid_argument")
    assert error["param"] == "temperature"
    assert error["type"] == "invalid_request_error"
    assert stub.calls == []


async def test_wrong_types_raise_bad_request_in_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        # A string for `messages`, on purpose.
        await sdk.chat.completions.create(model="gpt-4o-mini", messages="hi")  # type: ignore[arg-type]
    assert caught.value.param == "messages"


async def test_too_large_body_with_content_length_is_413(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    edge = await start_edge(max_body_bytes=1024)
    body = b'{"model": "' + b"x" * 2048 + b'"}'
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        response = await client.post(CHAT, content=body)
        assert_openai_error(response, 413, "request_too_large")
        # The connection stays usable, and a body within the limit still passes the check.
        response = await client.post(CHAT, content=b"[]")
        assert_openai_error(response, 400, "invalid_json")
    assert stub.calls == []


async def test_too_large_chunked_body_is_413(start_edge: EdgeFactory, stub: StubRouter) -> None:
    edge = await start_edge(max_body_bytes=1024)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "'
        for _ in range(8):
            yield b"x" * 256
        yield b'"}'

    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        response = await client.post(CHAT, content=chunks())
    assert "content-length" not in response.request.headers
    assert_openai_error(response, 413, "request_too_large")
    assert stub.calls == []


async def test_unknown_route_is_openai_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/completions-that-do-not-exist", json=BODY)
    error = assert_openai_error(response, 404, "unknown_url")
    assert error["type"] == "invalid_request_error"


async def test_wrong_method_is_openai_405(http: httpx.AsyncClient) -> None:
    response = await http.get(CHAT)
    assert_openai_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_unauthenticated_is_401_authentication_error(
    stub: StubRouter, sdk: openai.AsyncOpenAI
) -> None:
    async def on_chat(request: Any, context: Any) -> Any:
        await abort_with(
            context,
            ErrorDetails(
                code=grpc.StatusCode.UNAUTHENTICATED,
                message="Unknown client key.",
                reason="UNAUTHENTICATED",
            ),
        )

    stub.on_chat = on_chat
    with pytest.raises(openai.AuthenticationError) as caught:
        await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.type == "authentication_error"


@pytest.fixture
def dead_target() -> Iterator[str]:
    """A loopback address where nothing listens (the port stays reserved while the test runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


async def test_router_down_is_503(
    start_edge: EdgeFactory, dead_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    edge = await start_edge(router_target=dead_target, router_ready_wait_s=0.01)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        # At once: a read spends the client's retries of reads no router took (~5 s), a chat
        # its wait for a connection (a moment: `router_ready_wait_s`).
        chat, stream, ready, alive = await asyncio.gather(
            client.post(CHAT, json=BODY),
            client.post(CHAT, json={**BODY, "stream": True}),
            client.get("/readyz"),
            client.get("/healthz"),
        )
    error = assert_openai_error(chat, 503, "unavailable")
    assert error["type"] == "server_error"
    # gRPC's words name the router's address: they go to the log, not to the caller.
    assert error["message"] == "The router is unavailable; try again shortly."
    assert dead_target in caplog.text
    assert_openai_error(stream, 503, "unavailable")
    assert dead_target not in stream.text
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert alive.status_code == 200


def worst_retry_backoff_s(policy: dict[str, Any]) -> float:
    """The longest a read's retries wait in all (gRPC draws each backoff up to its cap)."""
    cap = float(policy["initialBackoff"].removesuffix("s"))
    ceiling = float(policy["maxBackoff"].removesuffix("s"))
    total = 0.0
    for _ in range(policy["maxAttempts"] - 1):
        total += min(cap, ceiling)
        cap *= policy["backoffMultiplier"]
    return total


def test_the_admin_routes_deadline_outlasts_the_clients_retries_of_a_read() -> None:
    # The admin calls are reads, retried up to ~5.5 s while no router takes them: their
    # deadline was 5 s, so a router down read as a 504 "Deadline Exceeded" (a slow router),
    # never as the router unavailable. Judged here, not timed: the retries' backoffs are
    # random, so a deadline too short failed only some runs, and one long enough could still
    # close first on a loaded machine. Room is left for the five attempts themselves.
    deadline_s = _admin._ADMIN_TIMEOUT_S
    assert deadline_s >= 1.5 * worst_retry_backoff_s(RETRY_POLICY)


async def test_router_down_is_503_on_the_admin_routes_too(
    start_edge: EdgeFactory, dead_target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retries of a read no router took end in UNAVAILABLE: a 503 on the status page and
    # every admin route. Their deadline (judged above) made a hang guard here: the retries end
    # long before it on any machine.
    monkeypatch.setattr(_admin, "_ADMIN_TIMEOUT_S", 30.0)
    edge = await start_edge(router_target=dead_target, admin_token="admin-token")
    bearer = {"authorization": "Bearer admin-token"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=45, headers=bearer) as client:
        answers = await asyncio.gather(
            *(client.get(f"/admin/{path}") for path in ("keys", "api/status", "api/clients"))
        )
    for answer in answers:
        error = assert_openai_error(answer, 503, "unavailable")
        assert error["message"] == "The router is unavailable; try again shortly."


async def test_malformed_router_answer_is_500_without_traceback(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        broken = rs.ChatResponse(completion=completion("hi"))
        broken.completion.extra_json = "not json"
        return broken

    stub.on_chat = on_chat
    response = await http.post(CHAT, json=BODY)
    error = assert_openai_error(response, 500, "internal_error")
    assert error["type"] == "server_error"


async def test_malformed_router_chunk_ends_stream_with_error_event(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    broken = chunk("lo")
    broken.chunk.extra_json = "not json"

    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield chunk("Hel")
        yield broken

    stub.on_chat_stream = on_stream
    response = await http.post(CHAT, json={**BODY, "stream": True})
    assert response.status_code == 200
    events = response.content.split(b"\n\n")
    assert events[1].startswith(b'data: {"error":{"message":"The edge failed')
    assert events[2:] == [b"data: [DONE]", b""]


# (x-session-id has the router's shorter limit: tests/router_service/sessions/test_tenants.py.)
@pytest.mark.parametrize(("header", "limit"), [("authorization", 4096), ("x-request-id", 1024)])
async def test_a_forwarded_header_over_its_limit_is_431_before_the_router(
    http: httpx.AsyncClient, stub: StubRouter, header: str, limit: int
) -> None:
    within = await http.post(CHAT, json=BODY, headers={header: "a" * limit})
    assert within.status_code == 501  # it reached the stub, which has no handler
    response = await http.post(CHAT, json=BODY, headers={header: "a" * 60_000})
    error = assert_openai_error(response, 431, "header_too_large")
    assert error["param"] == header
    assert error["type"] == "invalid_request_error"
    assert header in error["message"]
    assert len(stub.calls) == 1  # only the first


@pytest.mark.parametrize(
    ("grpc_message", "status", "code"),
    [
        ("received metadata size exceeds hard limit (:path, grpc-timeout, x-b3...)", 400,
         "metadata_too_large"),
        ("Received message larger than max (20000000 vs. 16777216)", 413, "message_too_large"),
    ],
)  # fmt: skip
async def test_grpcs_own_size_refusal_is_not_a_rate_limit(
    http: httpx.AsyncClient, stub: StubRouter, grpc_message: str, status: int, code: str
) -> None:
    # gRPC's refusal comes without the router's status details, as this plain abort does.
    async def on_chat(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc_message)

    stub.on_chat = on_chat
    response = await http.post(CHAT, json=BODY)
    error = assert_openai_error(response, status, code)
    assert error["type"] == "invalid_request_error"
    assert "retry-after" not in response.headers
    assert "grpc" not in error["message"] and "max" not in error["message"]


@pytest.mark.parametrize("listing", ["/v1/files", "/v1/batches", "/v1/responses/r/input_items"])
@pytest.mark.parametrize("limit", ["²", "9" * 5000])
async def test_a_limit_that_int_does_not_read_is_400(
    http: httpx.AsyncClient, stub: StubRouter, listing: str, limit: str
) -> None:
    # "²" is a digit to str.isdigit, and not a number to int(); int() refuses more than 4300
    # digits (ValueError): each was a 500.
    response = await http.get(listing, params={"limit": limit})
    error = assert_openai_error(response, 400, "invalid_value")
    assert error["param"] == "limit" and len(error["message"]) < 200  # not the 5000 digits
    assert stub.calls == []
