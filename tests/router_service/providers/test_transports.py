"""The upstream transports (`LeanTransport`, the default, and `AiohttpTransport`) against real
servers on loopback: the fake upstream, and a small aiohttp app for what the fake cannot send
(compressed bodies, repeated headers). Every behaviour is checked on both, and their errors
against httpx's own transport, fault by fault."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router_service.config import HttpConfig
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import CallRecord, FakeUpstream, Scenario
from router_service.outcomes import Outcome
from router_service.providers import create_http_client, map_transport_errors
from router_service.providers._aiohttp_transport import AiohttpTransport
from router_service.providers._lean_transport import LeanTransport
from router_service.telemetry._httpx import TracingTransport

pytestmark = pytest.mark.timeout(20)

HEADERS = {"authorization": "Bearer sk-test", "x-trace-me": "yes"}


def chat(text: str = "hello there", *, stream: bool = False) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}


Transport = AiohttpTransport | LeanTransport


def make(kind: str, max_connections: int, keepalive_expiry_s: float) -> Transport:
    if kind == "aiohttp":
        return AiohttpTransport(
            max_connections=max_connections, keepalive_expiry_s=keepalive_expiry_s
        )
    return LeanTransport(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry_s=keepalive_expiry_s,
    )


@pytest.fixture(params=["lean", "aiohttp"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def transport(kind: str) -> AsyncIterator[Transport]:
    transport = make(kind, 8, 5.0)
    yield transport
    await transport.aclose()


@pytest.fixture
async def client(fake: FakeUpstream, transport: Transport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport, base_url=fake.base_url) as client:
        yield client


async def finished(fake: FakeUpstream) -> CallRecord:
    def last_finished() -> CallRecord | None:
        record = fake.state.last()
        return record if record is not None and record.finished else None

    return await fake.state.wait_for(last_finished)


async def test_round_trip(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(status=203, headers={"x-upstream": "u1"}))
    body = orjson.dumps(chat("round trip"))
    response = await client.post("/chat/completions", content=body, headers=HEADERS)
    assert response.status_code == 203
    assert (response.http_version, response.reason_phrase) == (
        "HTTP/1.1",
        "Non-Authoritative Information",
    )
    assert response.headers["x-upstream"] == "u1"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["choices"][0]["message"]["content"] == "Echo: round trip"
    record = await finished(fake)
    assert record.body == chat("round trip")
    assert (record.key, record.headers["x-trace-me"]) == ("sk-test", "yes")
    # httpx sets the headers; aiohttp adds none of its own.
    assert record.headers["User-Agent"].startswith("python-httpx/")
    assert record.headers["Content-Length"] == str(len(body))
    assert "Content-Type" not in record.headers


async def test_error_status_and_get(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="3"))
    response = await client.post("/chat/completions", json=chat())
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    fake.state.clear_scenarios()
    models = await client.get("/models", params={"a": "b c"})
    assert models.status_code == 200 and models.json()["object"] == "list"


async def test_connection_reused(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/chat/completions", json=chat())).status_code == 200
    assert len({record.peer for record in fake.state.calls()}) == 1


async def test_stream_read_to_the_end(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/chat/completions", json=chat("a b c", stream=True)) as r:
        lines = [line async for line in r.aiter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert (await finished(fake)).completed


async def test_stream_closed_early_disconnects_upstream(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    async with client.stream("POST", "/chat/completions", json=chat(stream=True)) as response:
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: ")
    record = await finished(fake)
    assert record.client_disconnected and not record.completed


async def test_cancelled_request_propagates_and_disconnects(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario.stall())
    task = asyncio.create_task(client.post("/chat/completions", json=chat()))
    await fake.state.wait_for(lambda: fake.state.count() == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await finished(fake)).client_disconnected


async def test_connect_refused(transport: Transport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/v1/models")
            with pytest.raises(UpstreamFailure) as failure, map_transport_errors():
                await client.get(f"http://127.0.0.1:{port}/v1/models")
    assert failure.value.outcome is Outcome.CONNECT_FAILED


async def test_read_timeout(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario.stall())
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/chat/completions", json=chat(), timeout=httpx.Timeout(5.0, read=0.2))
    assert (await finished(fake)).client_disconnected


async def test_stall_inside_a_stream_is_a_read_timeout(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=1))
    timeout = httpx.Timeout(5.0, read=0.2)
    async with client.stream(
        "POST", "/chat/completions", json=chat(stream=True), timeout=timeout
    ) as r:
        with pytest.raises(httpx.ReadTimeout):
            await r.aread()


@pytest.mark.parametrize("stream", [True, False])
async def test_reset_mid_body(fake: FakeUpstream, client: httpx.AsyncClient, stream: bool) -> None:
    fake.state.set_scenario(Scenario(reset_after_chunks=2))
    with pytest.raises(httpx.TransportError) as caught:
        async with client.stream("POST", "/chat/completions", json=chat(stream=stream)) as r:
            assert r.status_code == 200
            await r.aread()
    assert isinstance(caught.value, httpx.ReadError)  # as httpx: the connection was reset


async def test_reset_before_response_is_not_a_connect_failure(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(reset_before_response=True))
    with pytest.raises(UpstreamFailure) as failure, map_transport_errors():
        await client.post("/chat/completions", json=chat())
    assert failure.value.outcome is Outcome.UPSTREAM_ERROR


async def test_truncated_body(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=1))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/chat/completions", json=chat())


async def test_streamed_request_body(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    async def parts() -> AsyncIterator[bytes]:
        raw = orjson.dumps(chat("in parts"))
        yield raw[:10]
        yield raw[10:]

    response = await client.post("/chat/completions", content=parts())
    assert response.status_code == 200
    assert (await finished(fake)).body == chat("in parts")


async def test_bodies_stay_byte_exact(kind: str) -> None:
    """A gzip body reaches httpx still compressed (httpx decodes it, as over httpcore);
    repeated response headers all arrive."""
    payload = b'{"ok": true}' * 100

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=gzip.compress(payload), content_type="application/json")
        response.headers["Content-Encoding"] = "gzip"
        response.headers.add("X-Twice", "1")
        response.headers.add("X-Twice", "2")
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(transport=make(kind, 1, 1.0)) as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
            assert response.content == payload
            assert response.headers.get_list("x-twice") == ["1", "2"]
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as raw:
                assert (
                    gzip.decompress(b"".join([part async for part in raw.aiter_raw()])) == payload
                )
    finally:
        await runner.cleanup()


async def test_factory_and_tracing_wrapper(fake: FakeUpstream) -> None:
    """create_http_client picks the transport; the tracing wrapper ends its span when the body
    is closed; closing the client closes aiohttp's session."""
    assert isinstance(create_http_client(HttpConfig())._transport, LeanTransport)  # the default
    client = create_http_client(HttpConfig(transport="aiohttp"))
    assert isinstance(client._transport, AiohttpTransport)  # tracing is off in tests
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inner = AiohttpTransport(max_connections=2, keepalive_expiry_s=1.0)
    traced = TracingTransport(inner, provider.get_tracer("test"))
    async with client, httpx.AsyncClient(transport=traced) as traced_client:
        assert (await client.post(f"{fake.base_url}/chat/completions", json=chat())).is_success
        response = await traced_client.post(f"{fake.base_url}/chat/completions", json=chat())
        assert response.is_success
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 200
    assert client._transport._session is None and inner._session is None
    provider.shutdown()


async def test_aclose_is_idempotent_and_final(fake: FakeUpstream, kind: str) -> None:
    transport = make(kind, 1, 1.0)
    request = httpx.Request("GET", f"{fake.base_url}/models")
    response = await transport.handle_async_request(request)
    await response.aread()
    await response.aclose()
    await transport.aclose()
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.handle_async_request(request)


FAULTS = {
    "reset before response": (Scenario(reset_before_response=True), False),
    "reset mid stream": (Scenario(reset_after_chunks=2), True),
    "reset mid body": (Scenario(reset_after_chunks=1), False),
    "truncated body": (Scenario(truncate_after_chunks=1), False),
    "stall before headers": (Scenario.stall(), False),
    "stall mid stream": (Scenario(stall_after_chunks=1), True),
}


async def outcome_of(client: httpx.AsyncClient, fake: FakeUpstream, fault: str) -> str:
    scenario, stream = FAULTS[fault]
    fake.state.set_scenario(scenario)
    try:
        async with client.stream("POST", "/chat/completions", json=chat(stream=stream)) as r:
            await r.aread()
    except httpx.TransportError as exc:
        return type(exc).__name__
    return f"HTTP {r.status_code}"


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_same_error_as_httpx_own_transport(
    fake: FakeUpstream, transport: Transport, fault: str
) -> None:
    timeout = httpx.Timeout(5.0, read=0.2)
    outcomes = []
    for under_test in (httpx.AsyncHTTPTransport(), transport):
        async with httpx.AsyncClient(
            transport=under_test, base_url=fake.base_url, timeout=timeout
        ) as client:
            outcomes.append(await outcome_of(client, fake, fault))
    assert outcomes[0] == outcomes[1]
