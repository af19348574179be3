"""Through a real edge, router and fake upstream: an SSE stream whose caller did not ask for usage
(`stream_options.include_usage`) carries none, as OpenAI's, and yet the caller's budget counts the
usage its upstream reported; one that asked reads OpenAI's usage chunk as before (chat and
legacy completions)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import EdgeFactory
from tests.router_service.engine.test_stream_usage import ALICE, LONG, alice, usage_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me a story"}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    fake.state.set_scenario(LONG)
    return await start_router(usage_config(fake))


@pytest.fixture
async def edge_url(router: RouterHandle, start_edge: EdgeFactory) -> str:
    # The edge tests' `start_edge` fronts a stub router: this one fronts the real one.
    return (await start_edge(router_target=router.server.address)).base_url


def sdk(edge_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{edge_url}/v1", api_key=ALICE, max_retries=0)


async def sse_data(edge_url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON of each `data:` line of a raw SSE stream, read with httpx."""
    headers = {"authorization": f"Bearer {ALICE}"}
    async with (
        httpx.AsyncClient(base_url=edge_url, timeout=10) as http,
        http.stream("POST", path, json={**body, "stream": True}, headers=headers) as response,
    ):
        assert response.status_code == 200
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [orjson.loads(line.removeprefix("data: ")) for line in lines[:-1]]


@pytest.mark.parametrize("model", ["gpt", "sonnet", "flash"])
async def test_an_sdk_stream_without_usage_shows_none_and_counts_the_reported(
    router: RouterHandle, edge_url: str, model: str
) -> None:
    async with sdk(edge_url) as client:
        stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
        assert chunks and all(c.usage is None and c.choices for c in chunks)
        counted = (await alice(router)).budgets[0].used

        asked = await client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        last = [chunk async for chunk in asked][-1]
    assert last.choices == [] and last.usage is not None  # OpenAI's usage chunk, as before
    assert last.usage.completion_tokens == 600  # the upstream's count (the estimate: 256)
    assert counted == last.usage.total_tokens
    assert (await alice(router)).budgets[0].used == 2 * counted


async def test_raw_sse_lines_have_a_usage_only_when_asked(
    router: RouterHandle, edge_url: str
) -> None:
    body = {"model": "gpt", "messages": MESSAGES}
    unasked = await sse_data(edge_url, "/v1/chat/completions", body)
    assert not any("usage" in data for data in unasked)
    assert all(data["choices"] for data in unasked)
    counted = (await alice(router)).budgets[0].used

    options = {"stream_options": {"include_usage": True}}
    asked = await sse_data(edge_url, "/v1/chat/completions", {**body, **options})
    *content, final = asked
    assert final["choices"] == [] and final["usage"]["completion_tokens"] == 600
    assert counted == final["usage"]["total_tokens"]  # the unasked stream counted it too
    assert all(data["usage"] is None for data in content)  # OpenAI's `usage: null`, relayed
    assert [data["choices"] for data in content] == [data["choices"] for data in unasked]


async def test_a_legacy_completions_stream_has_a_usage_only_when_asked(
    router: RouterHandle, edge_url: str
) -> None:
    body = {"model": "sonnet", "prompt": "tell me a story"}
    unasked = await sse_data(edge_url, "/v1/completions", body)
    assert unasked and not any("usage" in data for data in unasked)
    counted = (await alice(router)).budgets[0].used

    options = {"stream_options": {"include_usage": True}}
    asked = await sse_data(edge_url, "/v1/completions", {**body, **options})
    assert asked[-1]["usage"]["total_tokens"] == counted


@pytest.mark.parametrize("include_usage", [None, True, False])
async def test_the_callers_other_stream_options_reach_the_upstream(
    fake: FakeUpstream, router: RouterHandle, edge_url: str, include_usage: bool | None
) -> None:
    # Options the typed field cannot hold travel in the request's extras: kept, usage added.
    options: dict[str, Any] = {"include_obfuscation": False}
    if include_usage is not None:
        options["include_usage"] = include_usage
    body = {"model": "gpt", "messages": MESSAGES, "stream_options": options}
    sent = await sse_data(edge_url, "/v1/chat/completions", body)
    [call] = fake.state.calls()
    assert call.body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    if include_usage:
        shown = [data["usage"]["total_tokens"] for data in sent if data.get("usage")]
        assert shown == [(await alice(router)).budgets[0].used]
    else:
        assert not any("usage" in data for data in sent)
