"""Prompt-cache writes as SDK callers see them, from an Anthropic-kind deployment through the edge:
Anthropic's SDK on `/v1/messages` gets `cache_creation_input_tokens` (and `cache_creation` by
TTL) and `input_tokens` without the cache's parts, unary and streamed; OpenAI's SDK gets
`usage.prompt_tokens_details.cache_write_tokens` (only when some were written) on chat
completions and `input_tokens_details.cache_write_tokens` on a response. A `tool_use`'s and a
`tool_result`'s breakpoints reach Claude."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_sdk import config
from tests.router_service.engine.test_cache_write_cost import WRITES

CACHED_SYSTEM: Any = [
    {"type": "text", "text": "A long shared preamble.", "cache_control": {"type": "ephemeral"}}
]
ASK: Any = [{"role": "user", "content": "hello world"}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


async def usage_of(claude: anthropic.AsyncAnthropic, stream: bool) -> dict[str, Any]:
    """The answer's usage as the SDK assembled it; streamed, with what `message_delta` said by
    TTL (`cache_creation`: Anthropic says it in `message_start`, which the edge sends before
    the upstream has counted, and the SDK keeps only the counts of `message_delta`)."""
    request: Any = {"model": "sonnet", "max_tokens": 64, "system": CACHED_SYSTEM, "messages": ASK}
    if not stream:
        answer: anthropic.types.Message = await claude.messages.create(**request)
        return answer.usage.model_dump()
    async with claude.messages.stream(**request) as events:
        deltas = [e.usage.model_dump() async for e in events if e.type == "message_delta"]
        usage = (await events.get_final_message()).usage.model_dump()
    [delta] = deltas
    return usage | {"cache_creation": delta.get("cache_creation")}


@pytest.mark.parametrize("stream", [False, True])
async def test_the_anthropic_sdk_sees_cache_writes_apart_from_input_tokens(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    plain = await usage_of(claude, stream)
    assert not plain["cache_creation_input_tokens"] and not plain["cache_read_input_tokens"]
    fake.state.set_scenario(WRITES, model="claude-x")
    usage = await usage_of(claude, stream)
    assert usage["input_tokens"] == plain["input_tokens"] > 0  # the cache's parts not in it
    assert usage["cache_creation_input_tokens"] == 8
    assert usage["cache_read_input_tokens"] == 2
    by_ttl = {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 3}
    assert usage["cache_creation"] == by_ttl
    sent = fake.state.last()
    assert sent is not None and sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}


async def test_the_openai_sdk_sees_cache_write_tokens_only_when_written(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    ask: Any = {"model": "sonnet", "messages": [{"role": "user", "content": "hello world"}]}
    plain = await sdk.chat.completions.with_raw_response.create(**ask)
    assert "prompt_tokens_details" not in plain.http_response.json()["usage"]
    fake.state.set_scenario(WRITES, model="claude-x")
    answer = await sdk.chat.completions.create(**ask)
    assert answer.usage is not None and answer.usage.prompt_tokens_details is not None
    details = answer.usage.prompt_tokens_details.model_dump()
    assert details["cached_tokens"] == 2
    assert (details["cache_write_tokens"], details["cache_write_1h_tokens"]) == (8, 3)
    assert answer.usage.prompt_tokens == plain.http_response.json()["usage"]["prompt_tokens"] + 10


async def test_a_streamed_chat_and_a_response_carry_them_too(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(WRITES, model="claude-x")
    stream = await sdk.chat.completions.create(
        model="sonnet",
        messages=[{"role": "user", "content": "hello world"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [chunk.usage async for chunk in stream if chunk.usage is not None]
    [usage] = usages
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.model_dump()["cache_write_tokens"] == 8
    response = await sdk.responses.create(model="sonnet", input="hello world")
    assert response.usage is not None
    written = response.usage.input_tokens_details.model_dump()
    assert (written["cached_tokens"], written["cache_write_tokens"]) == (2, 8)


@pytest.mark.parametrize("content", ["sunny", [{"type": "text", "text": "sunny"}], ""])
async def test_tool_use_and_tool_result_cache_breakpoints_reach_claude(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, content: Any
) -> None:
    """Claude Code marks the last block of its last turn, in a tool loop a `tool_result`: the
    conversation so far is cached there, not sent at full price again on the next turn. The
    breakpoint stays on the block it was put on (an empty result's too: it has no part to put
    it on), a `tool_use`'s as well."""
    mark = {"cache_control": {"type": "ephemeral", "ttl": "1h"}}
    call = {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": content}
    messages: Any = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [call | mark]},
        {"role": "user", "content": [result | mark]},
    ]
    tools: Any = [{"name": "weather", "input_schema": {"type": "object"}}]
    await claude.messages.create(model="sonnet", max_tokens=64, messages=messages, tools=tools)
    sent = fake.state.last()
    assert sent is not None
    assert sent.body["messages"][1]["content"] == [call | mark]
    (block,) = sent.body["messages"][-1]["content"]
    text = "sunny" if content else ""
    assert block == {"type": "tool_result", "tool_use_id": "toolu_1", "content": text} | mark
