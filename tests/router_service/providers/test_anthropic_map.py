"""Anthropic Messages API ⇄ OpenAI dialect: the edges the conformance suite does not reach."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.providers import _anthropic_map as A
from router_service.providers._anthropic_stream import StreamMapper


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "caller-name", "messages": list(messages), **extra}


USER = {"role": "user", "content": "hi"}


def test_system_and_developer_turns_become_the_system_prompt() -> None:
    out = A.request_body(
        body(
            {"role": "system", "content": "one"},
            {"role": "developer", "content": [{"type": "text", "text": "two"}]},
            USER,
        ),
        "claude-x",
        4096,
        stream=False,
    )
    assert out["system"] == "one\n\ntwo"
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert (out["model"], out["max_tokens"], "stream" in out) == ("claude-x", 4096, False)


def test_max_tokens_comes_from_the_caller_first() -> None:
    assert A.request_body(body(USER, max_tokens=7), "m", 4096, stream=True)["max_tokens"] == 7
    out = A.request_body(body(USER, max_completion_tokens=9, max_tokens=7), "m", 1, stream=True)
    assert (out["max_tokens"], out["stream"]) == (9, True)


def test_parallel_tool_results_merge_into_one_user_turn() -> None:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in (1, 2)
    ]
    out = A.request_body(
        body(
            USER,
            {"role": "assistant", "content": "let me look", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c1", "content": "r1"},
            {"role": "tool", "tool_call_id": "c2", "content": "r2"},
        ),
        "m",
        100,
        stream=False,
    )
    assistant, results = out["messages"][1], out["messages"][2]
    assert assistant["content"] == [
        {"type": "text", "text": "let me look"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        {"type": "tool_use", "id": "c2", "name": "f", "input": {}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "r1"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "r2"},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, None),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    extra: dict[str, Any] = {"tools": tools}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    out = A.request_body(body(USER, **extra), "m", 1, stream=False)
    assert out.get("tool_choice") == expected
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_user_passthrough_and_dropped_openai_fields() -> None:
    openai_only: dict[str, Any] = {"safety_identifier": "s", "prompt_cache_key": "k"}
    openai_only["verbosity"] = "low"
    # The Agents SDK's ModelSettings and the Vercel AI SDK send them:
    openai_only |= {"prompt_cache_retention": "24h", "prompt_cache_options": {"ttl": "1h"}}
    out = A.request_body(
        body(USER, user="u-1", top_k=5, seed=1, logit_bias={"1": 2}, **openai_only),
        "m",
        1,
        stream=False,
    )
    assert out["metadata"] == {"user_id": "u-1"}
    assert out["top_k"] == 5  # Anthropic's own field, sent by the caller on purpose
    assert "seed" not in out and "logit_bias" not in out
    assert not set(openai_only) & set(out)  # OpenAI's fields Claude has no use for


def test_completion_maps_blocks_stop_reasons_and_cached_usage() -> None:
    data = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "cache_read_input_tokens": 10, "output_tokens": 4},
    }
    out = A.completion(data, "fallback", 123)
    message = out["choices"][0]["message"]
    assert message["content"] == "Sure."
    assert message["reasoning_content"] == "hmm"
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {
        "prompt_tokens": 13,
        "completion_tokens": 4,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 10},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    out = A.completion({"content": [], "stop_reason": stop}, "m", 1)
    assert out["choices"][0]["finish_reason"] == finish


def test_stream_numbers_tool_calls_apart_from_content_blocks() -> None:
    mapper = StreamMapper("m", 1)
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
        },
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ": 1}"},
        },
        {"type": "ping"},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    chunks = [c for e in events for c in mapper.feed(e)]

    assert {c["id"] for c in chunks} == {"msg_1"} and {c["model"] for c in chunks} == {"claude-x"}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Hi"}
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert [(c["index"], c.get("id"), c["function"]) for c in calls] == [
        (0, "t1", {"name": "f", "arguments": ""}),
        (0, None, {"arguments": '{"a"'}),
        (1, "t2", {"name": "g", "arguments": ""}),
        (0, None, {"arguments": ": 1}"}),
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 5
    assert chunks[-1]["usage"]["completion_tokens"] == 9


def test_stream_always_ends_with_the_usage_anthropic_reported() -> None:
    # Asked for or not: the router's accounting needs it (the engine shows it only when asked).
    mapper = StreamMapper("m", 1)
    mapper.feed({"type": "message_start", "message": {"id": "m1", "usage": {"input_tokens": 4}}})
    usage = {"output_tokens": 3}
    out = mapper.feed(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}
    )
    assert [c["choices"][0]["finish_reason"] for c in out if c["choices"]] == ["stop"]
    assert out[-1]["choices"] == [] and out[-1]["usage"]["total_tokens"] == 7


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"temperature": 1.5}, {"temperature": 1.0}),  # OpenAI's range runs to 2
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2}),  # Claude 4.5 takes one
        ({"top_p": 0.9}, {"top_p": 0.9}),
        ({"temperature": None, "top_p": None}, {}),  # the SDK's None: unset, as OpenAI reads it
        ({}, {}),
    ],
)
def test_sampling_is_sent_as_claude_takes_it(given: dict[str, Any], sent: dict[str, Any]) -> None:
    out = A.request_body(body(USER, **given), "claude-sonnet-4-5", 1024, stream=False)
    assert {k: out[k] for k in ("temperature", "top_p") if k in out} == sent


def _tool_stream(*argument_pieces: str) -> list[dict[str, Any]]:
    tool = {"type": "tool_use", "id": "t1", "name": "now", "input": {}}
    pieces = [{"type": "input_json_delta", "partial_json": piece} for piece in argument_pieces]
    return [
        {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 5}}},
        {"type": "content_block_start", "index": 0, "content_block": tool},
        *({"type": "content_block_delta", "index": 0, "delta": d} for d in pieces),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
    ]


@pytest.mark.parametrize(
    ("pieces", "arguments"), [((), "{}"), (("",), "{}"), (('{"tz"', ': "UTC"}'), '{"tz": "UTC"}')]
)
def test_streamed_tool_arguments_are_json_even_without_parameters(
    pieces: tuple[str, ...], arguments: str
) -> None:
    mapper = StreamMapper("m", 1)
    chunks = [c for e in _tool_stream(*pieces) for c in mapper.feed(e)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [call for delta in deltas for call in delta.get("tool_calls", [])]
    assert "".join(call["function"]["arguments"] for call in calls) == arguments


SIGNED = {"type": "thinking", "thinking": "Let me check.", "signature": "EqQBCgIYAhIM"}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}


def test_signed_thinking_comes_back_first_in_the_assistant_turn() -> None:
    """With thinking and tools, Anthropic refuses the tool result's turn unless the assistant
    turn before it starts with its thinking blocks, signatures intact."""
    data = {"content": [SIGNED, REDACTED, TOOL_USE], "stop_reason": "tool_use"}
    message = A.completion(data, "m", 1)["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me check."
    assert message["thinking_blocks"] == [SIGNED, REDACTED]

    result = {"role": "tool", "tool_call_id": "toolu_1", "content": "12:00"}
    out = A.request_body(body(USER, message, result), "claude", 1024, stream=False)
    assert out["messages"][1] == {"role": "assistant", "content": [SIGNED, REDACTED, TOOL_USE]}


def test_streamed_thinking_arrives_whole_with_its_signature_when_its_block_stops() -> None:
    mapper = StreamMapper("m", 1)
    thinking = {"type": "thinking", "thinking": ""}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": thinking},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": " check."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": REDACTED},
        {"type": "content_block_stop", "index": 1},
    ]
    deltas = [c["choices"][0]["delta"] for e in events for c in mapper.feed(e)]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me check."
    blocks = [b for d in deltas for b in d.get("thinking_blocks", [])]
    assert blocks == [SIGNED, REDACTED]
