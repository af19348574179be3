"""The upstream HTTP call an attempt makes is recorded on the attempt's span (GenAI's inference
span is the call's CLIENT span), on every transport, unary and streamed; any other request in an
attempt (a token exchange, a second call within it) has a span of its own, and
`telemetry.upstream_http_spans` gives every request its own span again (the shape before)."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.entra_keys import DEPLOYMENT, azure_config, entra_keys
from tests.router_service.telemetry.spans import Trace, attrs, ended

SERVER_CHAT = "switchboard.v1.RouterService/Chat"
SERVER_STREAM = "switchboard.v1.RouterService/ChatStream"
HTTP = ("http.request.method", "url.full", "http.response.status_code")


def params(model: str = "chain") -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hello")
    return chat_pb2.ChatParams(model=model, messages=[message], max_tokens=64)


async def kinds_of_stream(router: RouterHandle, model: str = "chain") -> list[str | None]:
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=params(model)))
    return [event.WhichOneof("event") async for event in call]


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
async def test_an_attempts_span_is_its_upstream_calls_on_every_transport(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture, transport: str
) -> None:
    router = await start_router(base_config(fake.base_url, http={"transport": transport}))
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")

    await router.stub.Chat(pb.ChatRequest(params=params()))  # model-a fails, model-b serves
    assert (await kinds_of_stream(router))[-1] == "summary"  # model-a cools: model-b

    trace = await ended(captured, SERVER_CHAT, SERVER_STREAM)
    assert "POST" not in trace.names()  # no span of its own for the upstream call
    (failed,) = trace.named("chat model-a")
    served, streamed = trace.named("chat model-b")
    port = int(fake.base_url.rsplit(":", 1)[1].split("/")[0])
    for attempt, status in ((failed, 502), (served, 200), (streamed, 200)):
        assert attempt.kind is SpanKind.CLIENT
        got = attrs(attempt)
        assert [got[name] for name in HTTP] == ["POST", f"{fake.base_url}/chat/completions", status]
        assert (got["server.address"], got["server.port"]) == ("127.0.0.1", port)
        assert trace.children(attempt) == []
    # Its failure is the attempt's outcome: error.type names it, the status says why.
    assert attrs(failed)["error.type"] == "UPSTREAM_ERROR"
    assert failed.status.status_code is StatusCode.ERROR
    assert "error.type" not in attrs(served) and served.status.status_code is StatusCode.UNSET
    # The stream's attempt ends with the stream (its request's span, the call's, ends after).
    assert streamed.end_time is not None
    (stream_request,) = trace.named(SERVER_STREAM)
    assert streamed.end_time <= (stream_request.end_time or 0)


async def test_upstream_http_spans_gives_every_request_its_own_span(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = base_config(fake.base_url, telemetry={"upstream_http_spans": True})
    router = await start_router(config)
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")

    await router.stub.Chat(pb.ChatRequest(params=params()))
    assert (await kinds_of_stream(router))[-1] == "summary"

    trace = await ended(captured, SERVER_CHAT, SERVER_STREAM)
    (failed,) = trace.named("chat model-a")
    served, streamed = trace.named("chat model-b")
    for attempt, status in ((failed, 502), (served, 200), (streamed, 200)):
        assert not set(HTTP) & set(attrs(attempt))
        [http] = trace.children(attempt)
        assert http.name == "POST" and http.kind is SpanKind.CLIENT
        assert attrs(http)["http.response.status_code"] == status
        assert attrs(http)["url.full"] == f"{fake.base_url}/chat/completions"
    assert attrs(trace.children(failed)[0])["error.type"] == "502"


async def test_a_token_exchange_in_an_attempt_has_its_own_span(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """The exchange (Entra ID here) runs in the attempt before its call: it does not take the
    attempt's span, which records the call to the API."""
    router = await start_router(azure_config(fake, entra_keys(fake, ["sp-1"])))

    await router.stub.Chat(pb.ChatRequest(params=params("gpt")))

    trace = await ended(captured, SERVER_CHAT)
    attempt = trace.one(f"chat {DEPLOYMENT}")
    assert f"/openai/deployments/{DEPLOYMENT}/chat/completions" in attrs(attempt)["url.full"]
    assert attrs(attempt)["http.response.status_code"] == 200
    [exchange] = trace.children(attempt)
    assert exchange.name == "POST" and exchange.kind is SpanKind.CLIENT
    assert attrs(exchange)["url.full"].endswith("/oauth2/v2.0/token")
    assert attrs(exchange)["http.response.status_code"] == 200


async def test_a_call_refused_within_an_attempt_is_a_failed_span_of_its_own(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """An upstream that refuses `stream_options` is asked again in the same attempt: the refused
    call (its 400) is a span of its own marked failed, and the attempt's span records the call
    that served it (the attempt succeeded: no error)."""
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario(refuses_stream_options=True))

    assert (await kinds_of_stream(router))[-1] == "summary"

    trace: Trace = await ended(captured, SERVER_STREAM)
    attempt = trace.one("chat model-a")
    assert attrs(attempt)["http.response.status_code"] == 200
    assert attrs(attempt)["switchboard.attempt.outcome"] == "OK"
    assert attempt.status.status_code is StatusCode.UNSET
    [refused] = trace.children(attempt)
    assert refused.name == "POST" and refused.kind is SpanKind.CLIENT
    got = attrs(refused)
    assert [got[name] for name in HTTP] == ["POST", f"{fake.base_url}/chat/completions", 400]
    assert got["error.type"] == "400" and refused.status.status_code is StatusCode.ERROR
    assert (attempt.start_time or 0) <= (refused.start_time or 0) <= (refused.end_time or 0)
    assert (refused.end_time or 0) <= (attempt.end_time or 0)


async def test_an_embeddings_request_split_in_calls_has_a_span_for_each(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """Gemini takes 100 texts a call: 230 go as three calls at once, one of them the attempt's
    and the others spans of their own under it, each ended."""
    gemini = {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]}
    deployments = [{"provider": "gem", "model": "gemini-embedding-001"}]
    config = {"providers": {"gem": gemini}, "models": {"e": {"deployments": deployments}}}
    router = await start_router({**config, "server": {"port": 0}})
    texts = embeddings_pb2.TextList(values=[f"text {i}" for i in range(230)])
    params = embeddings_pb2.EmbeddingParams(model="e", texts=texts)

    await router.stub.Embed(pb.EmbedRequest(params=params))

    trace = await ended(captured, "switchboard.v1.RouterService/Embed")
    [attempt] = trace.named("embeddings gemini-embedding-001")
    pieces = trace.children(attempt)
    url = f"{fake.url}/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [s.name for s in pieces] == ["POST", "POST"]
    for call in (attempt, *pieces):
        assert attrs(call)["url.full"] == url and attrs(call)["http.response.status_code"] == 200
        assert call.end_time is not None and call.status.status_code is StatusCode.UNSET
