"""Cohere Chat v2 ⇄ OpenAI dialect: parameters, finish reasons, failed generations, streams."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _cohere_map as C

USER = {"role": "user", "content": "hi"}


def test_parameters() -> None:
    out = C.request_body(
        {
            "messages": [{"role": "developer", "content": "rules"}, USER],
            "top_p": 0.5,
            "temperature": 0.1,
            "stop": ["a", "b"],
            "max_tokens": 9,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "required",
            "response_format": {"type": "json_object"},
            "n": 1,
            "k": 4,
        },
        "command-x",
        stream=True,
    )
    assert out == {
        "k": 4,  # Cohere's own parameter, passed through; `n` of 1 is what Cohere answers
        "model": "command-x",
        "messages": [{"role": "system", "content": "rules"}, {"role": "user", "content": "hi"}],
        "p": 0.5,
        "temperature": 0.1,
        "max_tokens": 9,
        "stop_sequences": ["a", "b"],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "REQUIRED",
        "response_format": {"type": "json_object"},
        "stream": True,
    }


@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
    ],
    ids=["pdf", "audio"],
)
def test_cohere_takes_no_files_or_audio(part: dict[str, Any]) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "see"}, part]}
    with pytest.raises(UpstreamFailure) as caught:
        C.request_body({"messages": [message]}, "command-a", stream=False)
    failure = caught.value
    assert (failure.outcome, failure.upstream_status) == (Outcome.UNSUPPORTED_INPUT, 0)
    assert failure.upstream_error is not None
    assert failure.upstream_error["param"] == "messages[0].content[1]"
    assert "text and image_url" in failure.message  # says what Cohere takes


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"top_k": 40}, {"k": 40}),  # the common extension to OpenAI's sampling
        ({"top_p": 1.0}, {"p": 0.99}),
        ({"top_p": 0.0}, {"p": 0.01}),
        ({"frequency_penalty": -0.5, "presence_penalty": 1.5}, {"frequency_penalty": 0.0}),
        ({"presence_penalty": 1.5}, {"presence_penalty": 1.0}),
        ({"top_p": 0.4, "frequency_penalty": 0.3}, {"p": 0.4, "frequency_penalty": 0.3}),
    ],
)
def test_openai_ranges_are_brought_into_cohere_ranges(
    given: dict[str, Any], sent: dict[str, Any]
) -> None:
    out = C.request_body({"messages": [USER], **given}, "command-x", stream=False)
    for native, value in sent.items():
        assert out[native] == value


def test_sampling_sent_as_null_is_left_out() -> None:
    """The SDK's None is JSON null, which OpenAI reads as unset: so does this mapping."""
    nulls = dict.fromkeys(("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"))
    out = C.request_body({"messages": [USER], **nulls}, "command-x", stream=False)
    assert not {"temperature", "p", "seed", "presence_penalty", "frequency_penalty"} & out.keys()


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("COMPLETE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR_TOXIC", "content_filter"),
    ],
)
def test_finish_reasons(raw: str, finish: str) -> None:
    data = {
        "id": "x",
        "finish_reason": raw,
        "message": {"content": [{"type": "text", "text": "t"}]},
    }
    assert C.completion(data, "m", 1)["choices"][0]["finish_reason"] == finish


def test_a_failed_generation_is_an_upstream_error() -> None:
    mapper = C.StreamMapper("m", 1)
    with pytest.raises(UpstreamFailure) as caught:
        mapper.feed({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "boom"}})
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR
    assert "boom" in caught.value.message


def test_usage_prefers_tokens_over_billed_units() -> None:
    usage = {
        "billed_units": {"input_tokens": 1, "output_tokens": 2},
        "tokens": {"input_tokens": 10, "output_tokens": 20},
    }
    assert C.usage(usage)["total_tokens"] == 30
    assert C.usage({"billed_units": {"input_tokens": 1, "output_tokens": 2}})["total_tokens"] == 3


def test_stream_events() -> None:
    mapper = C.StreamMapper("m", 1)
    events: list[dict[str, Any]] = [
        {"type": "message-start", "id": "abc", "delta": {"message": {"role": "assistant"}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}},
        {
            "type": "tool-call-start",
            "index": 0,
            "delta": {
                "message": {
                    "tool_calls": {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                }
            },
        },
        {
            "type": "tool-call-delta",
            "index": 0,
            "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}},
        },
        {"type": "tool-call-end", "index": 0},
        {
            "type": "message-end",
            "delta": {
                "finish_reason": "TOOL_CALL",
                "usage": {"tokens": {"input_tokens": 2, "output_tokens": 3}},
            },
        },
    ]
    chunks = [c for e in events for c in mapper.feed(e)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert {c["id"] for c in chunks} == {"abc"}
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1]["tool_calls"][0] == {
        "index": 0,
        "id": "t1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert deltas[2]["tool_calls"][0] == {"index": 0, "function": {"arguments": "{}"}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["total_tokens"] == 5


def test_a_reasoning_models_thinking_is_the_reasoning_content() -> None:
    content = [
        {"type": "thinking", "thinking": "Two and two. "},
        {"type": "thinking", "thinking": "Four."},
        {"type": "text", "text": "4"},
    ]
    data = {"id": "x", "finish_reason": "COMPLETE", "message": {"content": content}}
    message = C.completion(data, "m", 1)["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("4", "Two and two. Four.")
    # Without thinking there is no reasoning_content.
    plain = {"id": "x", "finish_reason": "COMPLETE", "message": {"content": content[2:]}}
    assert "reasoning_content" not in C.completion(plain, "m", 1)["choices"][0]["message"]


def test_streamed_thinking_is_reasoning_deltas_before_the_text() -> None:
    mapper = C.StreamMapper("m", 1)

    def content(index: int, kind: str, **fields: str) -> dict[str, Any]:
        return {"type": kind, "index": index, "delta": {"message": {"content": fields}}}

    events: list[dict[str, Any]] = [
        {"type": "message-start", "id": "abc", "delta": {"message": {"role": "assistant"}}},
        content(0, "content-start", type="thinking", thinking=""),
        content(0, "content-delta", thinking="Let me "),
        content(0, "content-delta", thinking="see."),
        {"type": "content-end", "index": 0},
        content(1, "content-start", type="text", text=""),
        content(1, "content-delta", text="4"),
        {"type": "content-end", "index": 1},
        {"type": "message-end", "delta": {"finish_reason": "COMPLETE"}},
    ]
    deltas = [c["choices"][0]["delta"] for e in events for c in mapper.feed(e) if c["choices"]]
    assert deltas[1:] == [
        {"reasoning_content": "Let me "},
        {"reasoning_content": "see."},
        {"content": "4"},
        {},
    ]
