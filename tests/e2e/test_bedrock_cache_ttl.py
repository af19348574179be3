"""An hour's prompt cache asked of a Claude on Bedrock: the caller's `cache_control` TTL
(`{"type": "ephemeral", "ttl": "1h"}`, as for the `anthropic` kind) reaches Converse as the
cachePoint's `ttl`, on a message's part, a system part and a tool alike, so Bedrock keeps it an
hour (and bills it as such: `cache_write_1h_tokens`); without a TTL the cachePoint is Bedrock's
default (5 minutes)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._bedrock_dialect import stream_event
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_bedrock_sdk import GOOD, PROFILE_ID, bedrock_config
from tests.helpers import serve_app
from tests.router_service.engine.test_cache_write_cost import WRITES

HOUR = {"type": "ephemeral", "ttl": "1h"}
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(bedrock_config(fake, {"iam": [GOOD]}))


def cache_points(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [block["cachePoint"] for block in blocks if "cachePoint" in block]


@pytest.mark.parametrize("control", [HOUR, {"type": "ephemeral"}], ids=["1h", "default"])
async def test_the_cache_ttl_reaches_the_cache_points(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, control: dict[str, Any]
) -> None:
    fake.state.set_scenario(WRITES, model=PROFILE_ID)
    system: Any = [{"type": "text", "text": "A long shared preamble.", "cache_control": control}]
    user: Any = [{"type": "text", "text": "hello world", "cache_control": control}]
    answer = await sdk.chat.completions.create(
        model="iam-chat",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        tools=[{**TOOL, "cache_control": control}],  # type: ignore[list-item]
    )
    sent = fake.state.last()
    assert sent is not None and sent.model == PROFILE_ID
    point = {"type": "default", "ttl": "1h"} if "ttl" in control else {"type": "default"}
    assert cache_points(sent.body["system"]) == [point]
    assert cache_points(sent.body["messages"][0]["content"]) == [point]
    assert cache_points(sent.body["toolConfig"]["tools"]) == [point]
    assert answer.usage is not None and answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.model_dump()["cache_write_1h_tokens"] == 3


async def test_a_ttl_bedrock_does_not_know_is_the_upstream_s_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    user: Any = [
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "2h"}}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="iam-chat", messages=[{"role": "user", "content": user}]
        )
    assert "ttl" in str(caught.value)


@pytest.mark.parametrize("content", ["sunny", [{"type": "text", "text": "sunny"}], ""])
async def test_a_tool_results_breakpoint_is_a_cache_point_after_it(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, content: Any
) -> None:
    """Claude Code marks the last block of its last turn, in a tool loop a `tool_result`: on
    Bedrock the conversation so far is cached there too (a cachePoint after the toolResult,
    none inside it), not sent at full price again on each turn of the loop; a `tool_use`'s
    breakpoint is a cachePoint after its toolUse."""
    call: Any = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    result: Any = {"type": "tool_result", "tool_use_id": "toolu_1", "content": content}
    messages: Any = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [call | {"cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [result | {"cache_control": HOUR}]},
    ]
    tools: Any = [{"name": "lookup", "input_schema": {"type": "object"}}]
    await claude.messages.create(model="iam-chat", max_tokens=64, messages=messages, tools=tools)
    sent = fake.state.last()
    assert sent is not None
    [use, after_use] = sent.body["messages"][-2]["content"]
    assert use["toolUse"]["toolUseId"] == "toolu_1"
    assert after_use == {"cachePoint": {"type": "default"}}
    [given, point] = sent.body["messages"][-1]["content"]
    assert given["toolResult"]["toolUseId"] == "toolu_1"
    assert cache_points(given["toolResult"]["content"]) == []
    assert point == {"cachePoint": {"type": "default", "ttl": "1h"}}


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
async def test_usage_counts_the_cache_in_the_prompt_once(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    """Bedrock's `inputTokens` is the uncached input only: its cache reads and writes come
    beside it, and its `totalTokens` counts them. OpenAI's `prompt_tokens` counts every input
    token, its `cached_tokens` the reads among them; the total is the prompt's and the
    answer's, each token once."""
    fake.state.set_scenario(WRITES, model=PROFILE_ID)
    said: Any = await sdk.chat.completions.create(
        model="iam-chat",
        messages=[{"role": "user", "content": "hello world"}],
        stream=stream,
        **_usage_asked(stream),
    )
    usage = [c.usage async for c in said if c.usage][-1] if stream else said.usage
    sent = fake.state.last()
    assert sent is not None and sent.model == PROFILE_ID

    uncached = usage.prompt_tokens - 2 - 8
    assert uncached > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    details = usage.prompt_tokens_details.model_dump()
    assert (details["cached_tokens"], details["cache_write_tokens"]) == (2, 8)


# A Converse usage whose `totalTokens` leaves the cache out (inputTokens + outputTokens), as some
# of Bedrock's models report it beside the documented total that counts it.
APART = {
    "inputTokens": 4,
    "outputTokens": 14,
    "totalTokens": 18,
    "cacheReadInputTokens": 20,
    "cacheWriteInputTokens": 1028,
}


async def _converse(request: web.Request) -> web.StreamResponse:
    content = {"role": "assistant", "content": [{"text": "Hi."}]}
    if request.path.endswith("/converse"):
        return web.json_response(
            {"output": {"message": content}, "stopReason": "end_turn", "usage": APART}
        )
    response = web.StreamResponse(headers={"content-type": "application/vnd.amazon.eventstream"})
    await response.prepare(request)
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"delta": {"text": "Hi."}, "contentBlockIndex": 0}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": APART, "metrics": {"latencyMs": 1}}),
    ]
    for kind, event in events:
        await response.write(stream_event(kind, event))
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
async def test_the_total_counts_each_token_once_whatever_bedrock_totals(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, stream: bool
) -> None:
    """OpenAI's total is the prompt's tokens (cache reads and writes among them) and the
    answer's: worked out from them, not taken from a `totalTokens` that left the cache out."""
    app = web.Application()
    app.router.add_post("/model/{model_id:.+}/{op:converse|converse-stream}", _converse)
    async with serve_app(app) as url:
        config = bedrock_config(fake, {"iam": [GOOD]})
        config["providers"]["iam"]["base_url"] = url
        edge = await start_edge(await start_router(config))
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        ) as sdk:
            said: Any = await sdk.chat.completions.create(
                model="iam-chat",
                messages=[{"role": "user", "content": "hello"}],
                stream=stream,
                **_usage_asked(stream),
            )
            usage = [c.usage async for c in said if c.usage][-1] if stream else said.usage

    assert (usage.prompt_tokens, usage.completion_tokens) == (4 + 20 + 1028, 14)
    assert usage.total_tokens == 4 + 20 + 1028 + 14
    assert usage.prompt_tokens_details.cached_tokens == 20


def _usage_asked(stream: bool) -> Any:
    """The SDK's arguments that ask a stream for its usage chunk."""
    return {"stream_options": {"include_usage": True}} if stream else {}
