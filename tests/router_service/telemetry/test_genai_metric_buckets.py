"""`gen_ai.client.token.usage` in the buckets OpenTelemetry's GenAI semantic conventions give it
(`gen-ai-metrics.md`: 1, 4, 16 … 67108864, each 4x the last): a long-context model's request of
tens of millions of tokens lands in a bucket, not only in +Inf. The GenAI client metrics say
the upstream they were measured against (`server.address`, `server.port`, recommended there):
the deployment's base URL's host and port, never its path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.helpers import serve_app
from tests.router_service.telemetry.test_metrics import samples

PROMPT_TOKENS = 20_000_000  # past the 16 Mi bound, under 64 Mi
COMPLETION_TOKENS = 3


async def _answer(request: web.Request) -> web.Response:
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    message = {"role": "assistant", "content": "one two three"}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "long-1"}
    return web.json_response({**answer, "choices": [choice], "usage": usage})


@pytest.fixture
async def long_context_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _answer)
    async with serve_app(app) as base_url:
        yield f"{base_url}/v1"


async def _served(start_router: StartRouter, base_url: str) -> None:
    config = {
        "providers": {"long": {"base_url": base_url, "keys": ["sk-long-context-1"]}},
        "models": {"long-group": {"deployments": [{"provider": "long", "model": "long-1"}]}},
        "server": {"port": 0},
        "auth": {"open": True},
    }
    router = await start_router(config)
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    await router.stub.Chat(
        pb.ChatRequest(params=chat_pb2.ChatParams(model="long-group", messages=[message]))
    )


async def test_a_long_context_request_s_tokens_land_in_a_bucket_of_the_conventions(
    long_context_url: str, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    await _served(start_router, long_context_url)

    found = samples(captured.prometheus_text())
    inputs = {
        float(dict(labels)["le"]): count
        for (name, labels), count in found.items()
        if name == "gen_ai_client_token_usage_bucket"
        and dict(labels)["gen_ai_token_type"] == "input"
    }
    assert sorted(inputs) == [4.0**power for power in range(14)] + [float("inf")]
    assert (inputs[4.0**12], inputs[4.0**13]) == (0, 1)  # over 16 Mi, under 64 Mi


async def test_genai_client_metrics_say_the_upstream_s_host_and_port_never_its_path(
    long_context_url: str, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    await _served(start_router, long_context_url)

    port = int(long_context_url.rsplit(":", 1)[1].split("/", 1)[0])
    for name in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
        points = list(captured.points(name))
        assert points, name
        for labels, _ in points:
            assert (labels["server.address"], labels["server.port"]) == ("127.0.0.1", port)
    text = captured.prometheus_text()
    assert f'server_port="{port}"' in text and 'server_address="127.0.0.1"' in text
    assert "/v1" not in text
