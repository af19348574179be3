"""Anthropic's server tools (web search, web fetch) through the edge's `/v1/messages`: Anthropic's
SDK → the edge → the router → a Claude deployment on the fake upstream, which runs them. The
answer's server tool blocks, cited text, `usage.server_tool_use` and `pause_turn` come back as
Claude sent them; the router routes such a request to Claude deployments only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import (
    CitationsWebSearchResultLocation,
    Message,
    RawMessageStreamEvent,
    ServerToolUseBlock,
    TextBlock,
    WebFetchToolResultBlock,
    WebSearchToolResultBlock,
)
from pydantic import TypeAdapter

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.router_service.telemetry.spans import ended, events

SEARCH: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
FETCH: Any = {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 2}
ASK: Any = {"role": "user", "content": "fake news today"}
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)
SEARCHED = ["text", "server_tool_use", "web_search_tool_result", "text"]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    for name, key in (("claude", "sk-ant"), ("claude2", "sk-ant-2")):
        out["providers"][name] = {"kind": "anthropic", "base_url": fake.base_url, "keys": [key]}
    out["models"]["mixed"] = {  # ordered: the GPT deployment first
        "deployments": [
            {"provider": "alpha", "model": "model-a"},
            {"provider": "claude", "model": "claude-x"},
        ]
    }
    out["models"]["claudes"] = {
        "deployments": [
            {"provider": "claude", "model": "claude-a"},
            {"provider": "claude2", "model": "claude-b"},
        ]
    }
    return out


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


@pytest.fixture
async def router(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter
) -> RouterHandle:
    return await start_router(config(fake))


def raw_content(response: Any) -> list[dict[str, Any]]:
    content = response.http_response.json()["content"]
    assert isinstance(content, list)
    return content


async def test_a_web_search_goes_to_claude_and_comes_back_as_claude_sent_it(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, captured: TelemetryCapture
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True))
    raw = await claude.messages.with_raw_response.create(
        model="mixed", max_tokens=256, messages=[ASK], tools=[SEARCH]
    )
    message = await raw.parse()
    # The GPT deployment, first in order, cannot run the tool: the plan leaves it out.
    assert raw.headers["x-switchboard-deployment"] == "claude/claude-x"
    assert fake.state.count(model="model-a") == 0
    trace = await ended(captured, "switchboard.v1.RouterService/Chat")
    plan = events(trace.one("switchboard.v1.RouterService/Chat"))["switchboard.route.plan"]
    assert plan["switchboard.route.candidates"] == ("claude/claude-x",)
    assert plan["switchboard.route.excluded"] == ("alpha/model-a",)
    assert plan["switchboard.route.excluded_reasons"] == ("server_tools",)
    sent = fake.state.last(model="claude-x")
    assert sent is not None and sent.body["tools"] == [SEARCH]  # as the caller declared it

    assert [block.type for block in message.content] == SEARCHED
    call, result, cited = message.content[1], message.content[2], message.content[3]
    assert isinstance(call, ServerToolUseBlock) and call.input == {"query": "fake news today"}
    assert isinstance(result, WebSearchToolResultBlock) and result.tool_use_id == call.id
    assert isinstance(result.content, list) and result.content[0].url.startswith("https://")
    assert isinstance(cited, TextBlock) and cited.citations
    assert isinstance(cited.citations[0], CitationsWebSearchResultLocation)
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1
    # Exactly Claude's blocks: what the fake answers a Claude caller directly.
    direct = await _direct(fake, tools=[SEARCH])
    assert raw_content(raw) == direct["content"]


async def _direct(fake: FakeUpstream, **request: Any) -> dict[str, Any]:
    """The fake's own answer to a Messages request (a Claude caller without the gateway)."""
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key="sk-ant") as direct:
        raw = await direct.messages.with_raw_response.create(
            model="claude-x", max_tokens=256, messages=[ASK], **request
        )
        answer: dict[str, Any] = raw.http_response.json()
        return answer


async def test_a_streamed_web_search_is_claudes_event_sequence(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True))
    request: Any = {"model": "mixed", "max_tokens": 256, "messages": [ASK], "tools": [SEARCH]}
    unary = await claude.messages.create(**request)
    async with claude.messages.stream(**request) as stream:
        seen = [event async for event in stream]
        message = await stream.get_final_message()
    starts = [e.content_block.type for e in seen if e.type == "content_block_start"]
    assert starts == SEARCHED
    deltas = [e.delta.type for e in seen if e.type == "content_block_delta"]
    assert "input_json_delta" in deltas and "citations_delta" in deltas
    # The SDK assembles the same message from the stream as from the unary answer.
    assert [b.model_dump() for b in message.content] == [b.model_dump() for b in unary.content]
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1


async def test_a_screened_stream_keeps_each_text_in_its_own_block(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A response guardrail holds the text back as it screens it; Claude's blocks do not wait:
    the text before a server tool's call is released before the call, not in the cited text."""
    screened = config(fake)
    screened["guardrails"] = [
        {"name": "pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]}
    ]
    edge = await start_edge(await start_router(screened))
    fake.state.set_scenario(Scenario(tool_call=True))
    request: Any = {"model": "mixed", "max_tokens": 256, "messages": [ASK], "tools": [SEARCH]}
    async with anthropic.AsyncAnthropic(
        base_url=edge.base_url, api_key="sk-caller", max_retries=0, timeout=10
    ) as claude:
        unary = await claude.messages.create(**request)
        async with claude.messages.stream(**request) as stream:
            message = await stream.get_final_message()
    assert [b.type for b in unary.content] == SEARCHED
    assert [b.model_dump() for b in message.content] == [b.model_dump() for b in unary.content]


async def test_a_redacted_answer_does_not_carry_claudes_blocks_with_the_text_unredacted(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Claude's blocks say the answer's text as Claude wrote it: a redacted answer drops them,
    for every caller (an OpenAI one sees the chat representation's own keys)."""
    screened = config(fake)
    screened["guardrails"] = [
        {"name": "pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]}
    ]
    edge = await start_edge(await start_router(screened))
    fake.state.set_scenario(Scenario(tool_call=True))
    ask: Any = [{"role": "user", "content": "mail jane@example.com"}]
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="mixed", messages=ask, tools=[SEARCH]
        )
    assert "[REDACTED:email]" in raw.http_response.text
    assert "jane@example.com" not in raw.http_response.text
    async with anthropic.AsyncAnthropic(
        base_url=edge.base_url, api_key="sk-caller", max_retries=0, timeout=10
    ) as claude:
        message = await claude.messages.create(
            model="mixed", max_tokens=256, messages=ask, tools=[SEARCH]
        )
    assert [b.type for b in message.content] == ["text"]  # the README's known limit
    assert "jane@example.com" not in message.model_dump_json()


async def test_a_group_without_claude_refuses_naming_the_tool(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    for stream in (False, True):
        with pytest.raises(anthropic.BadRequestError) as refused:
            await claude.messages.create(
                model="chain", max_tokens=64, messages=[ASK], tools=[SEARCH], stream=stream
            )
        assert refused.value.status_code == 400
        said = refused.value.body["error"]["message"]  # type: ignore[index]
        assert "web_search_20250305" in said and "`chain`" in said
    assert fake.state.count() == 0


async def test_other_server_tools_are_still_refused(claude: anthropic.AsyncAnthropic) -> None:
    bash: Any = {"type": "bash_20250124", "name": "bash"}
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model="mixed", max_tokens=64, messages=[ASK], tools=[bash])
    assert "bash_20250124" in refused.value.body["error"]["message"]  # type: ignore[index]


async def test_the_server_blocks_go_back_to_claude_intact_on_the_next_turns(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, finish_reason="pause_turn"))
    request: Any = {"model": "mixed", "max_tokens": 256, "tools": [SEARCH]}
    raw = await claude.messages.with_raw_response.create(**request, messages=[ASK])
    paused = await raw.parse()
    assert paused.stop_reason == "pause_turn"
    assert [b.type for b in paused.content] == SEARCHED[:3]
    # A paused turn continues with the turn sent back as it came.
    fake.state.set_scenario(Scenario(tool_call=True))
    turn: Any = {"role": "assistant", "content": paused.content}
    done_raw = await claude.messages.with_raw_response.create(**request, messages=[ASK, turn])
    sent = fake.state.last(model="claude-x")
    assert sent is not None and sent.body["messages"][-1]["content"] == raw_content(raw)
    # And the finished turn goes back, citations and all, before the next question (the two
    # assistant turns in a row are one to Claude: merged, in order).
    done_turn: Any = {"role": "assistant", "content": (await done_raw.parse()).content}
    again: Any = {"role": "user", "content": "and tomorrow?"}
    await claude.messages.create(**request, messages=[ASK, turn, done_turn, again])
    sent = fake.state.last(model="claude-x")
    assert sent is not None
    assert sent.body["messages"][1]["content"] == raw_content(raw) + raw_content(done_raw)
    assert sent.body["messages"][2]["role"] == "user"


async def test_a_turn_of_the_searches_that_filter_with_code_goes_back_to_claude(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    """web_search_20260209 (and web_fetch_20260209) filter their results with code Claude runs
    at Anthropic: the turn holds the code execution's call and result, and goes back whole."""
    fake.state.set_scenario(Scenario(tool_call=True))
    search: Any = {"type": "web_search_20260209", "name": "web_search"}
    code = "srvtoolu_code_1"
    turn: Any = {
        "role": "assistant",
        "content": [
            {
                "type": "server_tool_use",
                "id": code,
                "name": "bash_code_execution",
                "input": {"command": "python filter.py"},
            },
            {
                "type": "bash_code_execution_tool_result",
                "tool_use_id": code,
                "content": {
                    "type": "bash_code_execution_result",
                    "stdout": "kept",
                    "stderr": "",
                    "return_code": 0,
                    "content": [],
                },
            },
            {"type": "text", "text": "Filtered."},
        ],
    }
    again: Any = {"role": "user", "content": "and tomorrow?"}
    message = await claude.messages.create(
        model="mixed", max_tokens=256, messages=[ASK, turn, again], tools=[search]
    )
    assert [b.type for b in message.content] == SEARCHED
    sent = fake.state.last(model="claude-x")
    assert sent is not None and sent.body["messages"][1]["content"] == turn["content"]


async def test_web_fetch_takes_its_beta_flag_to_claude(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True))
    betas = {"anthropic-beta": "oauth-2025-04-20, web-fetch-2025-09-10"}
    message = await claude.messages.create(
        model="mixed", max_tokens=256, messages=[ASK], tools=[FETCH], extra_headers=betas
    )
    assert [b.type for b in message.content] == [
        "text",
        "server_tool_use",
        "web_fetch_tool_result",
        "text",
    ]
    assert isinstance(message.content[2], WebFetchToolResultBlock)
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_fetch_requests == 1
    sent = fake.state.last(model="claude-x")
    assert sent is not None
    assert sent.headers["anthropic-beta"] == "web-fetch-2025-09-10"  # its own flag alone
    assert "anthropic_beta" not in sent.body


async def test_failover_between_claude_deployments_keeps_the_server_tools(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True))
    fake.state.set_scenario(Scenario.server_error(529), model="claude-a")
    request: Any = {"model": "claudes", "max_tokens": 256, "messages": [ASK], "tools": [SEARCH]}
    raw = await claude.messages.with_raw_response.create(**request)
    assert raw.headers["x-switchboard-deployment"] == "claude2/claude-b"
    assert [b.type for b in (await raw.parse()).content] == SEARCHED
    async with claude.messages.stream(**request) as stream:
        message = await stream.get_final_message()
    assert [b.type for b in message.content] == SEARCHED
    assert fake.state.last(model="claude-b") is not None


@pytest.mark.parametrize("tool", [SEARCH, FETCH])
async def test_the_fakes_server_tool_answers_are_anthropics_types(
    fake: FakeUpstream, tool: Any
) -> None:
    """The fake's answers, unary and streamed, validate strictly as the SDK's own types."""
    fake.state.set_scenario(Scenario(tool_call=True))
    message = Message.model_validate(await _direct(fake, tools=[tool]))
    assert [b.type for b in message.content][1] == "server_tool_use"
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key="sk-ant") as direct:
        request: Any = {"model": "claude-x", "max_tokens": 256, "messages": [ASK]}
        async with direct.messages.with_streaming_response.create(
            **request, tools=[tool], stream=True
        ) as response:
            lines = [line async for line in response.iter_lines()]
    events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    for event in events:
        if event["type"] != "ping":  # not among the SDK's event types: it skips them
            STREAM_EVENT.validate_python(event)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[2]["type"] == message.content[2].type  # the result block whole in its start
    assert starts[2] == message.content[2].model_dump(exclude_none=True)
