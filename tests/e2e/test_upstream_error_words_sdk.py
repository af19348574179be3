"""Upstream errors whose words or status once misled the router, as the official SDKs see them
through the edge: a 5xx that merely mentions safety or tokens is the server's failure (the next
deployment answers, not the caller's 400), and Anthropic's 413 `request_too_large` fails over
as well: when every deployment says it, it is the caller's, said as the edge says its own 413."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.http_edge.harness import Edge

MAX_BODY = 8192
HELLO: list[Any] = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`chain`: OpenAI's alpha, then beta; `claude-chain`: an Anthropic deployment, then beta."""
    config = base_config(fake.base_url)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": fake.base_url,
        "keys": ["sk-claude-1"],
        "api_version": "2023-06-01",
    }
    config["models"]["claude-chain"] = {
        "deployments": [
            {"provider": "claude", "model": "model-c"},
            {"provider": "beta", "model": "model-b"},
        ]
    }
    return await start_router(config)


@pytest.fixture
async def edge(router: RouterHandle, start_edge: StartEdge) -> Edge:
    return await start_edge(router, max_body_bytes=MAX_BODY)


@pytest.fixture
async def sdk(edge: Edge) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


SERVER_ERRORS: dict[str, tuple[str, str, int, dict[str, Any]]] = {
    "openai_503_tokens": (
        "chain",
        "model-a",
        503,
        {
            "error": {
                "message": "server error: too many tokens in flight, retry shortly",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
    ),
    "anthropic_500_safety": (
        "claude-chain",
        "model-c",
        500,
        {
            "type": "error",
            "error": {"type": "api_error", "message": "Internal error computing safety scores"},
        },
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("case", SERVER_ERRORS)
async def test_a_server_error_that_mentions_a_callers_topic_fails_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, case: str, stream: bool
) -> None:
    group, failing, status, body = SERVER_ERRORS[case]
    fake.state.set_scenario(Scenario(status=status, error_body=body), model=failing)

    raw = await sdk.chat.completions.with_raw_response.create(
        model=group, messages=HELLO, stream=stream
    )

    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.headers["x-switchboard-attempts"] == "2"
    answer = raw.parse()
    if isinstance(answer, openai.AsyncStream):
        text = "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])
    else:
        text = answer.choices[0].message.content or ""
    assert text == "Echo: hello"
    assert fake.state.count(model=failing) == 1


ANTHROPIC_413 = {
    "type": "error",
    "error": {"type": "request_too_large", "message": "Request exceeds the maximum size"},
}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_anthropics_413_fails_over(
    sdk: openai.AsyncOpenAI, router: RouterHandle, fake: FakeUpstream, stream: bool
) -> None:
    """A body over Anthropic's limit is over its limit only: beta answers, Claude is cooled
    for nobody."""
    fake.state.set_scenario(Scenario(status=413, error_body=ANTHROPIC_413), model="model-c")

    raw = await sdk.chat.completions.with_raw_response.create(
        model="claude-chain", messages=HELLO, stream=stream
    )

    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.headers["x-switchboard-attempts"] == "2"
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    assert {d.deployment: d.cooldown_until_unix for d in stats.deployments}["claude/model-c"] == 0


async def test_a_413_of_every_deployment_is_the_callers_as_the_edges_own_413(
    sdk: openai.AsyncOpenAI, edge: Edge, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=413, error_body=ANTHROPIC_413))

    with pytest.raises(openai.APIStatusError) as upstreams:
        await sdk.chat.completions.create(model="claude-chain", messages=HELLO)
    async with httpx.AsyncClient(timeout=10) as http:
        edges = await http.post(f"{edge.base_url}/v1/chat/completions", content=b"x" * MAX_BODY * 2)

    assert (upstreams.value.status_code, edges.status_code) == (413, 413)
    said = upstreams.value.body
    assert isinstance(said, dict)
    assert (said["type"], said["code"]) == ("invalid_request_error", "request_too_large")
    assert (said["type"], said["code"]) == (
        edges.json()["error"]["type"],
        edges.json()["error"]["code"],
    )
    assert said["message"] == "Request exceeds the maximum size"
    assert fake.state.count() == 2  # each deployment once: its other keys have its limit


async def test_anthropics_413_reaches_an_anthropic_caller_as_request_too_large(
    edge: Edge, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=413, error_body=ANTHROPIC_413))
    async with anthropic.AsyncAnthropic(
        base_url=edge.base_url, api_key="sk-caller", max_retries=0, timeout=10
    ) as claude:
        with pytest.raises(anthropic.RequestTooLargeError) as refused:
            await claude.messages.create(model="claude-chain", max_tokens=16, messages=HELLO)

    assert refused.value.status_code == 413
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "request_too_large", "message": "Request exceeds the maximum size"},
    }
