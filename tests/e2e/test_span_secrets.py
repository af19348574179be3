"""No secret reaches a span, whatever an upstream's error says: not a configured key (of any
provider: the failing deployment's own are scrubbed at the attempt), not a bearer token or a
`?key=` credential an upstream or a proxy in front of it quotes, not the caller's token or
session — in any span's name, attribute, event or status, over HTTP and gRPC, unary and
streamed (the companion of tests/router_service/telemetry/test_secrets.py, which echoes the
failing key itself)."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import openai

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.auth.helpers import client
from tests.router_service.telemetry.spans import Trace, ended

# Beta's key is not shaped like one: only its being configured says it is a secret.
BETA_KEY = "beta-plain-3f9a71c2"
# An access token a gateway in front of the upstream quotes: no config holds it.
ISSUED = "eyJhbGciOiJSUzI1NiJ9.payload.signature0123"
GOOGLE = "AIzaSyD-quoted-in-a-url-0123456789"
TOKEN = "caller-token-4d2b8e61"
SESSION = "caller-session-9c0e5a"
ECHO = (
    f"gateway refused Authorization: Bearer {ISSUED} for https://gw.example/v1?key={GOOGLE} "
    f"(the account's other key is {BETA_KEY})"
)
STREAM = "switchboard.v1.RouterService/ChatStream"


def blob(trace: Trace) -> str:
    seen = []
    for span in trace.spans:
        seen += [span.name, str(dict(span.attributes or {})), span.status.description or ""]
        seen += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    return "\n".join(seen)


async def test_no_span_says_a_secret_an_upstream_error_quotes(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    with TelemetryCapture() as captured:
        config = base_config(fake.base_url, auth={"clients": [client("svc", TOKEN)]})
        config["providers"]["beta"]["keys"] = [BETA_KEY]
        router = await start_router(config)
        edge = await start_edge(router)
        body = {"error": {"message": ECHO, "type": "invalid_request_error"}}
        fake.state.set_scenario(Scenario(status=400, error_body=body))
        headers = {"x-session-id": SESSION}
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key=TOKEN, max_retries=0, default_headers=headers
        ) as sdk:
            messages: Any = [{"role": "user", "content": "hi"}]
            with contextlib.suppress(openai.APIStatusError):
                await sdk.chat.completions.create(model="chain", messages=messages)
            with contextlib.suppress(openai.APIStatusError):
                await sdk.chat.completions.create(model="chain", messages=messages, stream=True)
        said = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
        params = chat_pb2.ChatParams(model="chain", messages=[said])
        metadata = (("authorization", f"Bearer {TOKEN}"), ("x-session-id", SESSION))
        with contextlib.suppress(grpc.aio.AioRpcError):
            await router.stub.Chat(pb.ChatRequest(params=params), metadata=metadata)
        with contextlib.suppress(grpc.aio.AioRpcError):
            request = pb.ChatStreamRequest(params=params)
            async for _ in router.stub.ChatStream(request, metadata=metadata):
                pass

        trace = await ended(captured, "POST /v1/chat/completions", STREAM)
        text = blob(trace)
        assert "BAD_REQUEST: HTTP 400: gateway refused" in text  # what failed is still said
        for secret in (BETA_KEY, ISSUED, GOOGLE, TOKEN, SESSION, "sk-alpha-1", "sk-beta-1"):
            assert secret not in text


async def test_no_caller_reads_a_secret_an_upstream_error_quotes(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    """The same error reaches its caller (a 400 is the caller's, passed through): what it
    quotes of the router's credentials is masked there too, unary and streamed, over HTTP
    and gRPC — an access token the router got for the provider (OAuth, Entra) is in no
    config, and an upstream only echoes what the router sent it."""
    config = base_config(fake.base_url)
    config["providers"]["beta"]["keys"] = [BETA_KEY]
    router = await start_router(config)
    edge = await start_edge(router)
    body = {"error": {"message": ECHO, "type": "invalid_request_error"}}
    fake.state.set_scenario(Scenario(status=400, error_body=body))
    said = []
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="k", max_retries=0
    ) as sdk:
        messages: Any = [{"role": "user", "content": "hi"}]
        for stream in (False, True):
            try:
                await sdk.chat.completions.create(model="chain", messages=messages, stream=stream)
            except openai.BadRequestError as exc:
                said.append(f"{exc} {exc.body}")
    params = chat_pb2.ChatParams(
        model="chain", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
    )
    try:
        await router.stub.Chat(pb.ChatRequest(params=params))
    except grpc.aio.AioRpcError as exc:
        said.append(f"{exc.details()} {exc.trailing_metadata()}")
    try:
        async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=params)):
            pass
    except grpc.aio.AioRpcError as exc:
        said.append(f"{exc.details()} {exc.trailing_metadata()}")

    assert len(said) == 4 and all("gateway refused" in text for text in said)
    for secret in (BETA_KEY, ISSUED, GOOGLE):
        assert secret not in "\n".join(said)
