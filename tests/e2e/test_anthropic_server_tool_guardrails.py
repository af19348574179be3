"""Response guardrails screen what Claude's server tool blocks say (a search result's title, a
fetched page, `cited_text`), not only the answer's text: Anthropic's SDK → the edge → the router
→ a Claude deployment on the fake upstream, which runs the tools. The patterns below match text
that is only in those blocks (the fake's canned result and citation), never in the answer's own
text."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_anthropic_server_tools import ASK, FETCH, SEARCH, config

# (tool, a pattern found only in its result block and its citation's cited_text)
TOOLS = [
    pytest.param(SEARCH, "Fake result", id="web_search"),
    pytest.param(FETCH, "Fake page", id="web_fetch"),
]
BETAS = {"anthropic-beta": "web-fetch-2025-09-10"}


async def _answers(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    rule: dict[str, Any],
    tool: Any,
) -> tuple[dict[str, Any], str]:
    """Under the answer-side `rule`: the unary answer (its JSON) and the streamed answer's raw
    event lines, to one request using `tool`."""
    screened = config(fake)
    screened["guardrails"] = [{**rule, "apply_to": ["response"]}]
    edge = await start_edge(await start_router(screened))
    fake.state.set_scenario(Scenario(tool_call=True))
    request: Any = {
        "model": "mixed",
        "max_tokens": 256,
        "messages": [ASK],
        "tools": [tool],
        "extra_headers": BETAS,
    }
    async with anthropic.AsyncAnthropic(
        base_url=edge.base_url, api_key="sk-caller", max_retries=0, timeout=10
    ) as claude:
        raw = await claude.messages.with_raw_response.create(**request)
        unary: dict[str, Any] = raw.http_response.json()
        async with claude.messages.with_streaming_response.create(
            **request, stream=True
        ) as response:
            streamed = "\n".join([line async for line in response.iter_lines()])
    return unary, streamed


def _streamed_blocks(streamed: str) -> tuple[list[str], str | None]:
    """The block types of a raw event stream, and its stop_reason."""
    events = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: ")]
    types = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    stops = [e["delta"].get("stop_reason") for e in events if e["type"] == "message_delta"]
    return types, stops[-1] if stops else None


@pytest.mark.parametrize(("tool", "pattern"), TOOLS)
async def test_a_block_rule_matching_only_a_result_block_withholds_the_answer(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    tool: Any,
    pattern: str,
) -> None:
    rule = {"name": "no-fakes", "patterns": [pattern], "action": "block"}
    unary, streamed = await _answers(fake, start_router, start_edge, rule, tool)
    assert unary["stop_reason"] == "refusal"  # finish_reason content_filter
    assert pattern not in json.dumps(unary)
    types, stop = _streamed_blocks(streamed)
    assert stop == "refusal"
    # What came before the result block held no find and was sent; the result never is.
    assert types == ["text", "server_tool_use"]
    assert pattern not in streamed


@pytest.mark.parametrize(("tool", "pattern"), TOOLS)
async def test_a_redact_rule_matching_inside_a_block_drops_the_blocks(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    tool: Any,
    pattern: str,
) -> None:
    rule = {"name": "no-fakes", "patterns": [pattern], "action": "redact"}
    unary, streamed = await _answers(fake, start_router, start_edge, rule, tool)
    # Unary: the message's own text, Claude's blocks gone (none says the find).
    assert [b["type"] for b in unary["content"]] == ["text"]
    assert unary["stop_reason"] == "end_turn"
    assert "Echo: fake news today" in unary["content"][0]["text"]
    assert pattern not in json.dumps(unary)
    # Streamed: the result block with the find, and the citation after it, dropped.
    types, stop = _streamed_blocks(streamed)
    assert types[:2] == ["text", "server_tool_use"]
    assert f"{tool['name']}_tool_result" not in types
    assert stop == "end_turn"
    assert "Echo: fake news today" in streamed
    assert pattern not in streamed


async def test_a_query_echoing_the_callers_words_is_screened_in_a_stream_too(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The search's query (the fake searches the caller's words) is screened in the streamed
    `server_tool_use` block as in the text: its find drops that block and every later one."""
    rule = {"name": "no-news", "patterns": ["fake news"], "action": "redact"}
    unary, streamed = await _answers(fake, start_router, start_edge, rule, SEARCH)
    assert [b["type"] for b in unary["content"]] == ["text"]
    types, stop = _streamed_blocks(streamed)
    assert types == ["text"] and stop == "end_turn"
    assert "[REDACTED:pattern]" in streamed
    assert "fake news" not in streamed and "fake news" not in json.dumps(unary)
