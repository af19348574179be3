"""Bedrock Converse answers and ConverseStream events → OpenAI completions and chunks."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _bedrock_map as BM
from tests.router_service.providers.test_bedrock_map import CALL, WEATHER


def test_a_converse_answer_maps_to_a_completion() -> None:
    data = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {
                        "reasoningContent": {
                            "reasoningText": {"text": "thinking…", "signature": "s"}
                        }
                    },
                    {"text": "Checking."},
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_9",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        }
                    },
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {
            "inputTokens": 10,
            "outputTokens": 5,
            "totalTokens": 45,
            "cacheReadInputTokens": 20,
            "cacheWriteInputTokens": 10,
            "cacheDetails": [{"ttl": "1h", "inputTokens": 4}, {"ttl": "5m", "inputTokens": 6}],
        },
    }
    out = BM.completion(data, "us.anthropic.claude", 123)

    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["reasoning_content"] == "thinking…"
    assert choice["message"]["thinking_blocks"] == [
        {"type": "thinking", "thinking": "thinking…", "signature": "s"}
    ]
    assert choice["message"]["tool_calls"] == [
        {
            "id": "tooluse_9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 40,  # OpenAI counts cached prompt tokens in the prompt
        "completion_tokens": 5,
        "total_tokens": 45,
        # Cache writes are a part of the prompt too, the hour's (cacheDetails) a part of them.
        "prompt_tokens_details": {
            "cached_tokens": 20,
            "cache_write_tokens": 10,
            "cache_write_1h_tokens": 4,
        },
    }
    assert out["id"].startswith("chatcmpl-") and out["model"] == "us.anthropic.claude"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    data = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": stop,
    }
    assert BM.completion(data, "m", 0)["choices"][0]["finish_reason"] == finish


def test_a_filter_that_left_nothing_is_content_filtered() -> None:
    data = {
        "output": {"message": {"role": "assistant", "content": []}},
        "stopReason": "guardrail_intervened",
    }
    with pytest.raises(UpstreamFailure) as caught:
        BM.completion(data, "m", 0)
    assert caught.value.outcome is Outcome.CONTENT_FILTERED


def feed_all(
    mapper: BM.StreamMapper, events: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    return [chunk for kind, event in events for chunk in mapper.feed(kind, event)]


def test_a_stream_with_a_tool_call_and_usage() -> None:
    mapper = BM.StreamMapper("m", 1)
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant", "p": "pad"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me "}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "check."}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "a"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"ci'}}}),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": 'ty":"Oslo"}'}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t2", "name": "b"}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 2}),
        ("messageStop", {"stopReason": "tool_use"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10},
                "metrics": {"latencyMs": 5},
            },
        ),
    ]
    chunks = feed_all(mapper, events)

    assert len({c["id"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "Let me check."
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert [(c["index"], c.get("id"), c["function"].get("name")) for c in calls if "id" in c] == [
        (0, "t1", "a"),
        (1, "t2", "b"),
    ]
    assert (
        "".join(c["function"]["arguments"] for c in calls if c["index"] == 0) == '{"city":"Oslo"}'
    )
    assert "".join(c["function"]["arguments"] for c in calls if c["index"] == 1) == "{}"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 10


def test_a_stream_always_says_the_usage_bedrock_reported() -> None:
    # Asked for or not: the router's accounting needs it (the engine shows it only when asked).
    mapper = BM.StreamMapper("m", 1)
    chunks = feed_all(mapper, [("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1}})])
    assert [(c["choices"], c["usage"]["total_tokens"]) for c in chunks] == [([], 2)]


def test_a_stream_a_guardrail_stopped_before_any_content_is_content_filtered() -> None:
    mapper = BM.StreamMapper("m", 1)
    mapper.feed("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamFailure) as caught:
        mapper.feed("messageStop", {"stopReason": "guardrail_intervened"})
    assert caught.value.outcome is Outcome.CONTENT_FILTERED

    # After content, the caller has it: the stream ends with finish_reason content_filter.
    mapper = BM.StreamMapper("m", 1)
    mapper.feed("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Sorry."}})
    [chunk] = mapper.feed("messageStop", {"stopReason": "guardrail_intervened"})
    assert chunk["choices"][0]["finish_reason"] == "content_filter"


def test_signed_reasoning_round_trips() -> None:
    mapper = BM.StreamMapper("m", 1)
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hmm, "}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Oslo."}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": "UkVE"}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 1}),
    ]
    deltas = [c["choices"][0]["delta"] for c in feed_all(mapper, events)]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Hmm, Oslo."
    blocks = [b for d in deltas for b in d.get("thinking_blocks", [])]
    assert blocks == [
        {"type": "thinking", "thinking": "Hmm, Oslo.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "UkVE"},
    ]

    # Handed back on the assistant message, they lead its turn as reasoningContent blocks.
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL], "thinking_blocks": blocks},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "3"},
    ]
    turn = BM.request_body({"messages": history, "tools": [WEATHER]})["messages"][1]["content"]
    assert turn[:2] == [
        {"reasoningContent": {"reasoningText": {"text": "Hmm, Oslo.", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": "UkVE"}},
    ]
    assert "toolUse" in turn[2]
