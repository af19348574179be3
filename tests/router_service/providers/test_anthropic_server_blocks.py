"""Claude's own content blocks (server tool calls and results, their error forms, cited text) and
stop reasons through the chat representation: Claude's answer → the router's Anthropic mapping
→ the chat protos → the edge's Messages API codec → what the Anthropic SDK assembles, the same
blocks as Claude sent; and the beta flags and tools of a request on their way to Claude."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from clients import (
    InvalidRequestError,
    chat_completion_from_openai,
    chat_completion_to_openai,
    chunk_from_openai,
    chunk_to_openai,
)
from clients.codec.anthropic import (
    CONTENT_KEY,
    MessageEvents,
    message_to_anthropic,
    openai_body,
    wanted_betas,
)
from router_service.providers import _anthropic_map as A
from router_service.providers._anthropic_stream import StreamMapper

SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
CALL = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": "x"}}
FAILED = {  # the error form of a search's result
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_1",
    "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"},
}
CITATION = {
    "type": "char_location",
    "cited_text": "Paris",
    "document_index": 0,
    "document_title": "Atlas",
    "start_char_index": 0,
    "end_char_index": 5,
}
# Cited text first (no server block before it), then an uncited block, a search that failed,
# and text after it: every block boundary matters.
BLOCKS: list[dict[str, Any]] = [
    {"type": "text", "text": "Paris", "citations": [CITATION]},
    {"type": "text", "text": " is the capital."},
    CALL,
    FAILED,
    {"type": "text", "text": "No more searches."},
]
USAGE: dict[str, Any] = {"input_tokens": 5, "output_tokens": 7}
USAGE |= {"server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0}}
ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": BLOCKS,
    "stop_reason": "pause_turn",
    "stop_sequence": None,
    "usage": USAGE,
}
EVENTS = TypeAdapter(RawMessageStreamEvent)


def claude_events() -> list[dict[str, Any]]:
    """ANSWER as Claude streams it: a citation before its text, the call's input in pieces."""
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {**ANSWER, "content": []}}]
    for index, block in enumerate(BLOCKS):
        start, deltas = dict(block), []
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [
                {"type": "citations_delta", "citation": c} for c in block.get("citations", ())
            ]
            deltas.append({"type": "text_delta", "text": block["text"]})
        elif block["type"] == "server_tool_use":
            start["input"] = {}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ('{"q"', ': "x"}')]
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": "pause_turn", "stop_sequence": None}
    events += [{"type": "message_delta", "delta": delta, "usage": USAGE}, {"type": "message_stop"}]
    return events


def test_an_answer_comes_back_with_claudes_blocks_and_stop_reason() -> None:
    chat = chat_completion_to_openai(chat_completion_from_openai(A.completion(ANSWER, "m", 1)))
    assert chat["choices"][0]["message"]["content"] == "Paris is the capital.No more searches."
    message = message_to_anthropic(chat)
    assert message["content"] == BLOCKS and message["stop_reason"] == "pause_turn"
    assert message["usage"]["server_tool_use"] == USAGE["server_tool_use"]
    Message.model_validate(message)  # the SDK's own types, strictly


def test_a_changed_text_is_said_from_the_message_without_the_blocks() -> None:
    chat = chat_completion_to_openai(chat_completion_from_openai(A.completion(ANSWER, "m", 1)))
    chat["choices"][0]["message"]["content"] = "[REDACTED]"  # as a response guardrail masks it
    assert message_to_anthropic(chat)["content"] == [{"type": "text", "text": "[REDACTED]"}]


def test_a_stream_comes_back_as_the_same_blocks() -> None:
    mapper, stream = StreamMapper("m", 1), MessageEvents("m")
    sent: list[dict[str, Any]] = []
    for event in claude_events():
        for chunk in mapper.feed(event):
            sent += stream.chunk(chunk_to_openai(chunk_from_openai(chunk)))
    sent += stream.finish()
    snapshot = None
    for event in sent:
        parsed = EVENTS.validate_python(event)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs={})
    assert snapshot is not None
    assert [block.to_dict() for block in snapshot.content] == BLOCKS
    assert snapshot.stop_reason == "pause_turn"
    assert snapshot.usage.server_tool_use is not None
    assert snapshot.usage.server_tool_use.web_search_requests == 1


def test_a_turn_with_server_blocks_goes_back_to_claude_as_given() -> None:
    unsigned = {"type": "thinking", "thinking": "another provider's", "signature": ""}
    turn = {"role": "assistant", "content": [unsigned, *BLOCKS]}
    request = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "?"}, turn]}
    chat = openai_body({**request, "tools": [SEARCH]})
    assert chat["tools"] == [SEARCH] and chat["messages"][1][CONTENT_KEY] == BLOCKS
    out = A.request_body(chat, "claude-x", 100, stream=False)
    assert out["tools"] == [SEARCH] and out["messages"][1]["content"] == BLOCKS


def test_only_the_declared_server_tools_beta_flags_go_along_and_only_with_them() -> None:
    headers = ["oauth-2025-04-20,web-fetch-2025-09-10", "interleaved-thinking-2025-05-14"]
    assert wanted_betas(headers, ["web_fetch_20250910"]) == ["web-fetch-2025-09-10"]
    assert wanted_betas(headers, ["web_search_20250305", "function"]) == []
    request = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "?"}]}
    fetch = {"type": "web_fetch_20250910", "name": "web_fetch"}
    assert openai_body({**request, "tools": [SEARCH, fetch]}, headers)["anthropic_beta"] == [
        "web-fetch-2025-09-10"
    ]
    # Web search alone: the web-fetch flag stays behind (Vertex AI runs no web fetch).
    assert "anthropic_beta" not in openai_body({**request, "tools": [SEARCH]}, headers)
    weather = {"name": "weather", "input_schema": {"type": "object"}}
    assert "anthropic_beta" not in openai_body({**request, "tools": [weather]}, headers)


@pytest.mark.parametrize(
    "kind", ["code_execution_20250825", "bash_20250124", "computer_20250124", "web_search_v2"]
)
def test_other_server_tools_are_refused(kind: str) -> None:
    request = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "?"}]}
    with pytest.raises(InvalidRequestError, match=r"tools\[0\]\.type"):
        openai_body({**request, "tools": [{"type": kind, "name": "x"}]})
