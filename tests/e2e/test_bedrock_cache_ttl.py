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

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_bedrock_sdk import GOOD, PROFILE_ID, bedrock_config
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
