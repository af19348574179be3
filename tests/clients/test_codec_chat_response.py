"""chat.completion and chat.completion.chunk JSON ⇄ protos: exact round trips, lenient-but-typed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clients import (
    UpstreamFormatError,
    chat_completion_from_openai,
    chat_completion_to_openai,
    chunk_from_openai,
    chunk_to_openai,
)
from clients.switchboard.v1 import chat_pb2
from tests.clients.json_equal import assert_same_json

LOGPROBS: dict[str, Any] = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.125,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.125, "bytes": [72, 105]}],
        }
    ],
    "refusal": None,
}
USAGE: dict[str, Any] = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 4,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "refusal": None, "annotations": []},
            "logprobs": LOGPROBS,
            "finish_reason": "stop",
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        },
        {
            "index": 2,
            "message": {"role": "assistant", "content": "…", "reasoning_content": "hm"},
            "logprobs": None,
            "finish_reason": "eos_token",
        },
    ],
    "usage": USAGE,
    "system_fingerprint": "fp_abc123",
    "service_tier": "default",
}


def completion_round_trip(body: dict[str, Any]) -> tuple[dict[str, Any], chat_pb2.ChatCompletion]:
    parsed = chat_completion_from_openai(copy.deepcopy(body))
    wire = chat_pb2.ChatCompletion.FromString(parsed.SerializeToString())
    return chat_completion_to_openai(wire), wire


def chunk_round_trip(body: dict[str, Any]) -> tuple[dict[str, Any], chat_pb2.ChatCompletionChunk]:
    parsed = chunk_from_openai(copy.deepcopy(body))
    wire = chat_pb2.ChatCompletionChunk.FromString(parsed.SerializeToString())
    return chunk_to_openai(wire), wire


def test_completion_round_trips_exactly() -> None:
    out, completion = completion_round_trip(COMPLETION)
    assert_same_json(out, COMPLETION)
    assert [c.finish_reason for c in completion.choices] == [
        chat_pb2.FINISH_REASON_STOP,
        chat_pb2.FINISH_REASON_TOOL_CALLS,
        chat_pb2.FINISH_REASON_OTHER,
    ]
    assert completion.choices[2].finish_reason_raw == "eos_token"
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    assert completion.usage.prompt_tokens_details.HasField("cached_tokens")
    assert "system_fingerprint" in completion.extra_json
    assert completion.choices[0].message.role == chat_pb2.ROLE_ASSISTANT


def test_completion_without_usage_or_object() -> None:
    body = {k: v for k, v in COMPLETION.items() if k not in ("usage", "object")}
    out, completion = completion_round_trip(body)
    assert not completion.HasField("usage")
    assert_same_json(out, body | {"object": "chat.completion"})


def stream_chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_001,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
        "choices": choices,
        **extra,
    }


CHUNKS: list[dict[str, Any]] = [
    stream_chunk(
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        usage=None,
    ),
    stream_chunk([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]),
    stream_chunk(
        [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
                "logprobs": None,
                "finish_reason": None,
            }
        ]
    ),
    stream_chunk(
        [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
                "finish_reason": None,
            }
        ]
    ),
    stream_chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]),
    stream_chunk([], usage=USAGE),
    stream_chunk(
        [{"index": 0, "delta": {"content": "x"}, "logprobs": LOGPROBS, "finish_reason": None}]
    ),
]


@pytest.mark.parametrize("body", CHUNKS)
def test_chunks_round_trip_exactly(body: dict[str, Any]) -> None:
    out, _ = chunk_round_trip(body)
    assert_same_json(out, body)


def test_chunk_fields() -> None:
    _, role_chunk = chunk_round_trip(CHUNKS[0])
    delta = role_chunk.choices[0].delta
    assert (delta.role, delta.WhichOneof("content"), delta.text) == (
        chat_pb2.ROLE_ASSISTANT,
        "text",
        "",
    )
    assert role_chunk.choices[0].finish_reason == chat_pb2.FINISH_REASON_UNSPECIFIED
    _, text_chunk = chunk_round_trip(CHUNKS[1])
    assert text_chunk.choices[0].delta.role == chat_pb2.ROLE_UNSPECIFIED
    _, call_chunk = chunk_round_trip(CHUNKS[3])
    call = call_chunk.choices[0].delta.tool_calls[0]
    assert call.HasField("index")
    assert (call.index, call.id, call.function.arguments) == (0, "", '{"ci')
    _, usage_chunk = chunk_round_trip(CHUNKS[5])
    assert len(usage_chunk.choices) == 0
    assert usage_chunk.usage.total_tokens == 29


def test_router_built_chunk_writes_openai_shape() -> None:
    """A chunk built from typed fields alone (another provider's adapter) is valid OpenAI."""
    chunk = chat_pb2.ChatCompletionChunk(id="c", created=1, model="claude")
    chunk.choices.add(index=0, delta=chat_pb2.ChatMessage(text="hi"))
    chunk.choices.add(
        index=1, delta=chat_pb2.ChatMessage(), finish_reason=chat_pb2.FINISH_REASON_LENGTH
    )
    assert chunk_to_openai(chunk) == {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "claude",
        "choices": [
            {"index": 0, "delta": {"content": "hi"}, "finish_reason": None},
            {"index": 1, "delta": {}, "finish_reason": "length"},
        ],
    }


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"choices": "x"}, "choices"),
        ({"created": "now"}, "created"),
        ({"id": 5}, "id"),
        ({"choices": [{"index": 0, "delta": {}, "finish_reason": 3}]}, "choices[0].finish_reason"),
        ({"choices": [{"index": "0", "delta": {}}]}, "choices[0].index"),
        ({"choices": [{"index": 0, "delta": {"role": "robot"}}]}, "choices[0].delta.role"),
        ({"choices": [{"index": 0, "delta": "hi"}]}, "choices[0].delta"),
        ({"usage": {"prompt_tokens": 1.5}}, "usage.prompt_tokens"),
        ({"usage": {"prompt_tokens_details": []}}, "usage.prompt_tokens_details"),
    ],
)
def test_malformed_upstream_chunk(change: dict[str, Any], path: str) -> None:
    with pytest.raises(UpstreamFormatError) as info:
        chunk_from_openai(stream_chunk([]) | change)
    assert info.value.path == path
    assert path in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_fractional_created_is_its_whole_seconds() -> None:
    # Seen from OpenAI-compatible servers; refusing it failed the deployment over a timestamp.
    assert chunk_from_openai(stream_chunk([]) | {"created": 1733900000.5}).created == 1733900000
    assert chat_completion_from_openai(COMPLETION | {"created": 1.0e9}).created == 1_000_000_000


def test_malformed_upstream_completion() -> None:
    with pytest.raises(UpstreamFormatError, match=r"chat\.completion"):
        chat_completion_from_openai(["not", "an", "object"])  # type: ignore[arg-type]  # on purpose
    with pytest.raises(UpstreamFormatError) as info:
        chat_completion_from_openai(COMPLETION | {"choices": [{"message": {"content": 1}}]})
    assert info.value.path == "choices[0].message.content"


def test_cache_writes_are_typed_usage_fields_that_round_trip() -> None:
    body = copy.deepcopy(COMPLETION)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 2, "cache_write_tokens": 8}
    body["usage"]["prompt_tokens_details"]["cache_write_1h_tokens"] = 3
    out, completion = completion_round_trip(body)
    assert_same_json(out, body)
    details = completion.usage.prompt_tokens_details
    assert (details.cache_write_tokens, details.cache_write_1h_tokens) == (8, 3)
    assert not details.extra_json  # typed fields, not the details' unknown keys
