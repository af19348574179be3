"""The router's upstream client (`create_http_client` → `UpstreamClient`), against a loopback
aiohttp server: adapters' requests go out exactly as built — our headers, no cookies kept from an
earlier answer, no redirect followed — with the timeouts the adapter set."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import logging
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from types import FrameType
from typing import Literal

import httpx
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from clients import chat_params_from_openai
from router_service.clock import SYSTEM_CLOCK
from router_service.config import HttpConfig, ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import ChatCall, OpenAIAdapter, create_http_client
from router_service.providers._http import UpstreamClient, send_upstream
from router_service.providers._lean_transport import LeanTransport
from router_service.telemetry._httpx import TracingTransport
from router_service.telemetry._state import VERSION
from tests.helpers import serve_app, tracked

pytestmark = pytest.mark.timeout(20)

COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
}


class Upstream:
    """Answers with a cookie and records what each request carried."""

    def __init__(self) -> None:
        self.seen: list[CIMultiDictProxy[str]] = []
        self.redirect = False

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers)
        if self.redirect:
            raise web.HTTPTemporaryRedirect("/elsewhere")
        response = web.json_response(COMPLETION)
        response.set_cookie("session", "from-the-first-answer")
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat)
    app.router.add_post("/elsewhere", state.chat)
    async with serve_app(app) as base_url:
        yield state, f"{base_url}/v1"


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_requests_go_out_as_built(
    upstream: tuple[Upstream, str], transport: Literal["aiohttp", "httpx"]
) -> None:
    state, base_url = upstream
    http = create_http_client(HttpConfig(transport=transport))
    assert isinstance(http, UpstreamClient)
    # A bare key string: the config-file shorthand.
    config = ProviderConfig(kind="openai", base_url=base_url, keys=["sk-upstream"])  # type: ignore[list-item]
    adapter = OpenAIAdapter("p", config, http, SYSTEM_CLOCK)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    params, _ = chat_params_from_openai(body)
    call = ChatCall("m", "sk-upstream", params, 5.0)
    async with http:
        first = await adapter.chat(call)
        second = await adapter.chat(call)
        state.redirect = True
        with pytest.raises(UpstreamFailure) as caught:
            await adapter.chat(call)
    assert first.choices[0].message.text == second.choices[0].message.text == "hi"
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR  # a redirect is not followed
    assert len(state.seen) == 3
    for headers in state.seen:
        assert headers["authorization"] == "Bearer sk-upstream"
        assert headers["user-agent"] == f"switchboard/{VERSION}"
        assert headers["accept"] == "application/json"
        assert "accept-encoding" not in headers
        # The first answer's cookie never rides along on a later request.
        assert "cookie" not in headers


class HoldingUpstream:
    """Streams one chunk, then holds the stream open until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {**COMPLETION, "object": "chat.completion.chunk"}
        chunk["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await self.release.wait()
        await response.write(b"data: [DONE]\n\n")
        return response


def _holders_of(marker: str) -> list[object]:
    """Live request objects and body dicts that still carry the prompt `marker`. Any other
    test's may be alive too (its cleanup late on a loaded machine): a streaming request's
    `content` raises unread, and is no body of ours (an adapter's is bytes)."""

    def carries(obj: object) -> bool:
        if isinstance(obj, httpx.Request):
            return isinstance(obj.stream, httpx.ByteStream) and marker.encode() in obj.content
        return isinstance(obj, dict) and "messages" in obj and marker in str(obj["messages"])

    gc.collect()
    return [obj for obj in tracked((httpx.Request, dict)) if carries(obj)]


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
async def test_an_open_stream_does_not_hold_its_request_body(
    transport: Literal["lean", "aiohttp", "httpx"],
) -> None:
    # A stream is open for as long as the model writes; were its request (the encoded body)
    # or the body's dict kept that long, every open stream would hold its prompt twice more.
    state = HoldingUpstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat)
    marker = f"prompt-{uuid.uuid4().hex}-" + "x" * 4096  # this test's own, not another's
    body = {"model": "m", "messages": [{"role": "user", "content": marker}], "stream": True}
    params, _ = chat_params_from_openai(body)
    del body
    call = ChatCall("m", "sk-upstream", params, 5.0)
    async with serve_app(app) as base_url:
        http = create_http_client(HttpConfig(transport=transport))
        # A bare key string: the config-file shorthand.
        config = ProviderConfig(kind="openai", base_url=f"{base_url}/v1", keys=["sk-upstream"])  # type: ignore[list-item]
        adapter = OpenAIAdapter("p", config, http, SYSTEM_CLOCK)
        try:
            async with http, adapter.stream_chat(call) as chunks:
                first = await anext(aiter(chunks))
                assert first.choices[0].delta.text == "hi"
                assert _holders_of(marker) == []
                state.release.set()
                assert [c async for c in chunks] == []
        finally:
            state.release.set()  # the server's shutdown waits for its handlers


_PAYLOAD = orjson.dumps(COMPLETION)
_GZIPPED = gzip.compress(_PAYLOAD)
# Answers by the request's path, byte for byte: what aiohttp's server would not write (a cut).
_ANSWERS = {
    "/whole": b"content-length: %d\r\n\r\n%s" % (len(_PAYLOAD), _PAYLOAD),
    "/chunked": b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
    % (10, _PAYLOAD[:10], len(_PAYLOAD) - 10, _PAYLOAD[10:]),
    "/gzip": b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(_GZIPPED), _GZIPPED),
    "/cut": b"content-length: %d\r\n\r\n%s" % (len(_PAYLOAD) + 10, _PAYLOAD),
    "/headers": b"Content-Encoding: gzip\r\nX-Request-Id: r-1\r\nSet-Cookie: a=1\r\n"
    b"set-cookie: b=2\r\nX-Note: caf\xe9\r\nContent-Length: %d\r\n\r\n%s"
    % (len(_GZIPPED), _GZIPPED),
}
# What /headers answers, as its pairs (after the status line's content-type).
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"Content-Encoding", b"gzip"),
    (b"X-Request-Id", b"r-1"),
    (b"Set-Cookie", b"a=1"),
    (b"set-cookie", b"b=2"),
    (b"X-Note", b"caf\xe9"),
    (b"Content-Length", b"%d" % len(_GZIPPED)),
]


@contextlib.asynccontextmanager
async def raw_upstream() -> AsyncIterator[tuple[str, list[int]]]:
    """Yields the base URL and the count of connections it accepted (a list of one)."""
    accepted = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                sized = [line for line in lines if line.lower().startswith("content-length:")]
                await reader.readexactly(int(sized[0].split(":")[1]) if sized else 0)
                path = lines[0].split()[1]
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(_ANSWERS[path])
                await writer.drain()
                if path == "/cut":
                    break
        except asyncio.IncompleteReadError:
            pass  # the client closed its connection
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()


def _post(url: str) -> httpx.Request:
    timeout = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    return httpx.Request("POST", url, content=b"{}", extensions={"timeout": timeout})


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("answer", ["whole", "chunked", "gzip"])
async def test_a_unary_answer_is_read_whole(transport: str, answer: str) -> None:
    async with raw_upstream() as (base_url, accepted):
        http = create_http_client(HttpConfig(transport=transport))  # type: ignore[arg-type]
        async with http:
            for _ in range(2):  # the second on the connection the first gave back
                request = _post(f"{base_url}/{answer}")
                response = await send_upstream(http, request)
                assert response.json() == COMPLETION
                assert response.is_stream_consumed and response.is_closed
                assert response.request is request
    assert accepted == [1]


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
async def test_a_cut_answer_is_a_read_error_of_its_request(transport: str) -> None:
    async with raw_upstream() as (base_url, _):
        http = create_http_client(HttpConfig(transport=transport))  # type: ignore[arg-type]
        async with http:
            request = _post(f"{base_url}/cut")
            with pytest.raises(httpx.RemoteProtocolError) as caught:
                await send_upstream(http, request)
    assert caught.value.request is request


async def test_a_unary_answer_starts_no_async_generator() -> None:
    """The lean transport hands a unary answer's body over without httpx's async generators
    (its `aread`: four, with two chunkers, a decoder and three context managers per call)."""
    started: list[object] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def seen(generator: AsyncGenerator[object, None]) -> None:
        started.append(generator)
        if firstiter is not None:
            firstiter(generator)

    async with raw_upstream() as (base_url, _):
        http = create_http_client(HttpConfig(transport="lean"))
        async with http:
            await send_upstream(http, _post(f"{base_url}/whole"))  # the connection, opened
            sys.set_asyncgen_hooks(firstiter=seen, finalizer=finalizer)
            try:
                response = await send_upstream(http, _post(f"{base_url}/whole"))
            finally:
                sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    assert response.json() == COMPLETION
    assert started == []


@pytest.mark.parametrize("transport", ["lean", "httpx"])
async def test_response_headers_are_what_httpx_makes_of_them(transport: str) -> None:
    """Names as written, in order, repeated ones kept, a value's encoding found the same way
    (latin-1 here), the body decoded by its Content-Encoding, whatever the names' case."""
    expected = httpx.Headers(_HEADERS)
    async with raw_upstream() as (base_url, _):
        http = create_http_client(HttpConfig(transport=transport))  # type: ignore[arg-type]
        async with http:
            response = await send_upstream(http, _post(f"{base_url}/headers"))
    assert response.headers.raw == expected.raw
    assert response.headers.multi_items() == expected.multi_items()
    assert response.headers.encoding == expected.encoding == "iso-8859-1"
    assert response.headers.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert response.headers["x-note"] == "caf\xe9"
    assert response.json() == COMPLETION  # gunzipped


async def test_lean_response_headers_are_normalized_by_no_call() -> None:
    """The lean connection writes httpx's (name, lower-case name, value) triples as the headers
    arrive: a response's `Headers` normalizes none of them anew (two calls a header), nor tests
    what it is made from against ABCs (`Headers()`: two `ABCMeta.__instancecheck__`)."""
    normalized: list[str] = []

    def seen(frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        name, caller = frame.f_code.co_name, frame.f_back
        if name.startswith("_normalize_header") or (
            name == "__instancecheck__"
            and caller is not None
            and caller.f_code.co_filename.endswith("httpx/_models.py")
        ):
            normalized.append(name)

    async with raw_upstream() as (base_url, _):
        http = create_http_client(HttpConfig(transport="lean"))
        async with http:
            await send_upstream(http, _post(f"{base_url}/headers"))  # the connection, opened
            request = _post(f"{base_url}/headers")  # httpx's way: its headers normalized
            sys.setprofile(seen)
            try:
                response = await send_upstream(http, request)
            finally:
                sys.setprofile(None)
    assert response.headers.raw == _HEADERS
    assert normalized == []


Traced = tuple[UpstreamClient, LeanTransport, InMemorySpanExporter]


@contextlib.asynccontextmanager
async def traced_lean() -> AsyncIterator[
    tuple[UpstreamClient, LeanTransport, InMemorySpanExporter]
]:
    """An upstream client on the lean transport inside upstream-call spans (tracing on)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    lean = LeanTransport(max_connections=2, max_keepalive_connections=2, keepalive_expiry_s=5.0)
    try:
        async with UpstreamClient(TracingTransport(lean, provider.get_tracer("t"))) as http:
            yield http, lean, exporter
    finally:
        provider.shutdown()


@pytest.mark.parametrize("answer", ["whole", "chunked", "gzip"])
async def test_a_traced_unary_answer_is_read_whole(answer: str) -> None:
    """In its span too, a unary answer is read straight from the connection (no async
    generator; a gzipped one httpx's way); the span ends once it is read, the connection back."""
    started: list[object] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()
    async with raw_upstream() as (base_url, accepted), traced_lean() as (http, lean, spans):
        await send_upstream(http, _post(f"{base_url}/{answer}"))  # the connection, opened
        sys.set_asyncgen_hooks(firstiter=started.append, finalizer=finalizer)
        try:
            request = _post(f"{base_url}/{answer}")
            response = await send_upstream(http, request)
        finally:
            sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
        assert response.json() == COMPLETION
        assert response.is_stream_consumed and response.is_closed and response.request is request
        assert lean.idle_connections == 1
        ended = spans.get_finished_spans()
    assert accepted == [1]
    assert answer == "gzip" or started == []
    assert [span.attributes["http.response.status_code"] for span in ended] == [200, 200]  # type: ignore[index]


async def test_a_traced_cut_answer_is_a_read_error_its_span_records() -> None:
    async with raw_upstream() as (base_url, _), traced_lean() as (http, lean, spans):
        request = _post(f"{base_url}/cut")
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await send_upstream(http, request)
        assert lean.open_connections == 0  # closed, not given back
        (span,) = spans.get_finished_spans()
    assert caught.value.request is request
    assert span.attributes is not None
    assert span.attributes["error.type"] == "RemoteProtocolError"
    assert span.status.status_code is StatusCode.ERROR


async def test_a_traced_cut_answer_ends_its_span_once(caplog: pytest.LogCaptureFixture) -> None:
    """A failed read of a traced unary answer ends its span once: the response's close that
    follows does not end it again (the SDK's "Calling end() on an ended span." warning, one
    per failed upstream read)."""
    async with raw_upstream() as (base_url, _), traced_lean() as (http, _lean, spans):
        with caplog.at_level(logging.WARNING), pytest.raises(httpx.RemoteProtocolError):
            await send_upstream(http, _post(f"{base_url}/cut"))
        (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [r.getMessage() for r in caplog.records if "ended span" in r.getMessage()] == []
