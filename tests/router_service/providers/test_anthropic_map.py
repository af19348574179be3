"""Anthropic Messages API ⇄ OpenAI dialect: the edges the conformance suite does not reach."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _anthropic_map as A


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
    out = A.request_body(
        body(USER, user="u-1", top_k=5, seed=1, logit_bias={"1": 2}), "m", 1, stream=False
    )
    assert out["metadata"] == {"user_id": "u-1"}
    assert out["top_k"] == 5  # Anthropic's own field, sent by the caller on purpose
    assert "seed" not in out and "logit_bias" not in out


def test_image_url_sources() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
    ]
    blocks = A.request_body(body({"role": "user", "content": content}), "m", 1, stream=False)[
        "messages"
    ][0]["content"]
    assert blocks == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
    ]


def test_file_parts_become_document_blocks() -> None:
    text = base64.b64encode(b"plain words").decode()
    content = [
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "file", "file": {"file_id": "https://x.test/report.pdf"}},
        {"type": "file", "file": {"file_data": "JVBERi0y", "filename": "b.pdf"}},
        {"type": "file", "file": {"file_data": f"data:text/plain;base64,{text}"}},
    ]
    out = A.request_body(body({"role": "user", "content": content}), "m", 1, stream=False)
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
            "title": "a.pdf",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "document", "source": {"type": "url", "url": "https://x.test/report.pdf"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0y"},
            "title": "b.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
        },
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}, ""),
        ({"type": "file", "file": {"file_id": "file-abc123"}}, ".file.file_id"),
        ({"type": "file", "file": {"file_data": "data:image/png;base64,iVBO"}}, ".file"),
        ({"type": "file", "file": {"file_id": "https://x.test/notes.txt"}}, ".file"),
        ({"type": "input_video", "input_video": {"url": "https://x.test/v.mp4"}}, ""),
    ],
    ids=["audio", "openai_file_id", "image_file", "text_by_url", "unknown_kind"],
)
def test_what_claude_cannot_take_is_unsupported_input(part: dict[str, Any], param: str) -> None:
    content = [{"type": "text", "text": "look"}, part]
    with pytest.raises(UpstreamFailure) as caught:
        A.request_body(body({"role": "user", "content": content}), "m", 1, stream=False)
    failure = caught.value
    # Nothing reached Anthropic: no upstream status; another deployment may take it.
    assert (failure.outcome, failure.upstream_status) == (Outcome.UNSUPPORTED_INPUT, 0)
    assert failure.upstream_error is not None
    assert failure.upstream_error["param"] == f"messages[0].content[1]{param}"
    assert failure.upstream_error["message"].startswith("anthropic ")


@pytest.mark.parametrize(
    "message",
    [
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}],
        },
        {
            "role": "user",
            "content": [{"type": "file", "file": {"file_data": "data:text/plain;base64,@@"}}],
        },
        {"role": "user", "content": [{"type": "file", "file": {"filename": "a.pdf"}}]},
    ],
    ids=["tool_arguments", "text_not_base64", "file_without_data"],
)
def test_a_malformed_request_is_the_callers_400(message: dict[str, Any]) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        A.request_body(body(message), "m", 1, stream=False)
    assert (caught.value.outcome, caught.value.upstream_status) == (Outcome.BAD_REQUEST, 400)


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
    mapper = A.StreamMapper("m", 1, include_usage=True)
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


def test_stream_without_include_usage_sends_no_usage_chunk() -> None:
    mapper = A.StreamMapper("m", 1, include_usage=False)
    out = mapper.feed({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}})
    assert [c["choices"][0]["finish_reason"] for c in out] == ["stop"]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"temperature": 1.5}, {"temperature": 1.0}),  # OpenAI's range runs to 2
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2}),  # Claude 4.5 takes one
        ({"top_p": 0.9}, {"top_p": 0.9}),
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
    mapper = A.StreamMapper("m", 1, include_usage=False)
    chunks = [c for e in _tool_stream(*pieces) for c in mapper.feed(e)]
    calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls", [])]
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
    mapper = A.StreamMapper("m", 1, include_usage=False)
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


def test_cache_breakpoints_reach_the_blocks_they_were_set_on() -> None:
    """Prompt caching: `cache_control` where LiteLLM and OpenRouter take it (a content part, a
    tool) lands on the Anthropic block made from it; the system prompt becomes blocks then."""
    cache = {"type": "ephemeral"}
    system = {
        "role": "system",
        "content": [{"type": "text", "text": "A long manual.", "cache_control": cache}],
    }
    user = {"role": "user", "content": [{"type": "text", "text": "Q?", "cache_control": cache}]}
    tool = {"type": "function", "function": {"name": "f"}, "cache_control": cache}
    out = A.request_body(body(system, user, tools=[tool]), "claude", 1024, stream=False)
    assert out["system"] == [{"type": "text", "text": "A long manual.", "cache_control": cache}]
    assert out["messages"][0]["content"] == [{"type": "text", "text": "Q?", "cache_control": cache}]
    assert out["tools"][0]["cache_control"] == cache
    # Without a breakpoint the system prompt stays one string.
    plain = A.request_body(
        body({"role": "system", "content": "Be terse."}, USER), "c", 1, stream=False
    )
    assert plain["system"] == "Be terse."


def test_a_tool_result_with_an_image_keeps_it() -> None:
    shot = "data:image/png;base64,iVBORw0KGgo="
    result = {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": [
            {"type": "text", "text": "the screen:"},
            {"type": "image_url", "image_url": {"url": shot}},
        ],
    }
    call = {"id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
    asked = {"role": "assistant", "content": None, "tool_calls": [call]}
    out = A.request_body(body(USER, asked, result), "claude", 1024, stream=False)
    [block] = out["messages"][2]["content"]
    assert block["content"] == [
        {"type": "text", "text": "the screen:"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
    ]
    # Text alone stays a string, as before.
    text_only = A.request_body(
        body(USER, asked, result | {"content": "12:00"}), "c", 1, stream=False
    )
    assert text_only["messages"][2]["content"][0]["content"] == "12:00"
