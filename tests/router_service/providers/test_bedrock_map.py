"""OpenAI chat ⇄ Bedrock Converse, both ways, as dict → dict functions."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _bedrock_map as BM
from router_service.providers._bedrock_blocks import document_name

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "tooluse_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}


def test_a_conversation_maps_to_converse() -> None:
    body = {
        "model": "ignored",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "3 degrees"},
            {"role": "user", "content": "and tomorrow?"},
        ],
        "max_completion_tokens": 100,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": "END",
        "tools": [WEATHER],
        "tool_choice": "auto",
    }

    out = BM.request_body(body)

    assert out["system"] == [{"text": "Be brief."}, {"text": "Use metric."}]
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Let me look."},
                {
                    "toolUse": {
                        "toolUseId": "tooluse_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                },
            ],
        },
        {  # the tool result and the next question: one user turn (turns alternate)
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "3 degrees"}]}},
                {"text": "and tomorrow?"},
            ],
        },
    ]
    # Temperature is brought into the models' 0–1 and wins over top_p (Claude 4.5 takes one).
    assert out["inferenceConfig"] == {
        "maxTokens": 100,
        "temperature": 1.0,
        "stopSequences": ["END"],
    }
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather of a city.",
                    "inputSchema": {"json": WEATHER["function"]["parameters"]},  # type: ignore[index]
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    assert "model" not in out  # the model id travels in the URL


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"any": {}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool": {"name": "get_weather"}},
        ),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    assert BM.request_body(body)["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_drops_the_tools_unless_the_history_needs_them() -> None:
    plain = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER],
        "tool_choice": "none",
    }
    assert "toolConfig" not in BM.request_body(plain)

    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "3"},
    ]
    kept = BM.request_body({**plain, "messages": history})
    assert kept["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


def test_tool_history_without_tools_gets_a_spec_per_tool_it_names() -> None:
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "3"},
    ]
    out = BM.request_body({"messages": history})
    assert out["toolConfig"] == {
        "tools": [
            {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}
        ]
    }


def test_other_fields_go_where_converse_takes_them() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "top_k": 40,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
        "additionalModelRequestFields": {"top_k": 5},
        "seed": 7,  # OpenAI's, which Converse has no field for: dropped
    }
    out = BM.request_body(body)
    assert out["guardrailConfig"] == {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
    assert out["additionalModelRequestFields"] == {
        "top_k": 5,  # the caller's own additionalModelRequestFields win
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    assert "seed" not in out and "top_k" not in out


def test_images_documents_and_cache_points() -> None:
    content = [
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "s3://bucket/cat.webp"}},
        {
            "type": "file",
            "file": {
                "file_data": "data:application/pdf;base64,JVBE",
                "filename": "Q3 report (final).v2.pdf",
            },
        },
        {
            "type": "file",
            "file": {"file_data": "data:text/csv;base64,YSxi", "filename": "data.csv"},
        },
    ]
    out = BM.request_body({"messages": [{"role": "user", "content": content}]})
    assert out["messages"][0]["content"] == [
        {"text": "look"},
        {"cachePoint": {"type": "default"}},
        {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}},
        {"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/cat.webp"}}}},
        {
            "document": {
                "format": "pdf",
                "name": "Q3 report (final)-v2",
                "source": {"bytes": "JVBE"},
            }
        },
        {"document": {"format": "csv", "name": "data", "source": {"bytes": "YSxi"}}},
    ]


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ({"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}, "no audio"),
        ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}, "not an http"),
        ({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}, "image/bmp"),
        ({"type": "file", "file": {"file_data": "data:audio/ogg;base64,T2dn"}}, "audio/ogg"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "Files API"),
    ],
)
def test_what_converse_cannot_carry_is_unsupported_input(part: dict[str, Any], says: str) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        BM.request_body({"messages": [{"role": "user", "content": [part]}]})
    assert caught.value.outcome is Outcome.UNSUPPORTED_INPUT
    assert says in str(caught.value)
    assert caught.value.upstream_error is not None
    assert caught.value.upstream_error["param"].startswith("messages[0].content[0]")


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("report.pdf", "report"),
        ("a  b\tc.txt", "a b c"),
        ("x/y:z.md", "x-y-z"),
        ("", "document"),
        ("...", "document"),
    ],
)
def test_document_names_are_what_bedrock_accepts(filename: str, name: str) -> None:
    assert document_name(filename) == name


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
        "prompt_tokens_details": {"cached_tokens": 20},
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
    mapper = BM.StreamMapper("m", 1, include_usage=True)
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


def test_a_stream_without_usage_asked_sends_none() -> None:
    mapper = BM.StreamMapper("m", 1, include_usage=False)
    chunks = feed_all(mapper, [("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1}})])
    assert chunks == []


def test_a_stream_a_guardrail_stopped_before_any_content_is_content_filtered() -> None:
    mapper = BM.StreamMapper("m", 1, include_usage=False)
    mapper.feed("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamFailure) as caught:
        mapper.feed("messageStop", {"stopReason": "guardrail_intervened"})
    assert caught.value.outcome is Outcome.CONTENT_FILTERED

    # After content, the caller has it: the stream ends with finish_reason content_filter.
    mapper = BM.StreamMapper("m", 1, include_usage=False)
    mapper.feed("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Sorry."}})
    [chunk] = mapper.feed("messageStop", {"stopReason": "guardrail_intervened"})
    assert chunk["choices"][0]["finish_reason"] == "content_filter"


def test_a_tool_result_with_an_image_keeps_it() -> None:
    screenshot = [
        {"type": "text", "text": "the page"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBO"},
            "cache_control": {"type": "ephemeral"},
        },
    ]
    history = [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": screenshot},
    ]
    out = BM.request_body({"messages": history, "tools": [WEATHER]})
    assert out["messages"][-1]["content"] == [
        {
            "toolResult": {
                "toolUseId": "tooluse_1",
                "content": [
                    {"text": "the page"},
                    {"image": {"format": "png", "source": {"bytes": "iVBO"}}},
                ],
            }
        }
    ]


def test_signed_reasoning_round_trips() -> None:
    mapper = BM.StreamMapper("m", 1, include_usage=False)
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
