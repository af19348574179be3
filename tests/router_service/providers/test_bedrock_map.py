"""OpenAI chat requests → Bedrock Converse bodies (answers and streams: test_bedrock_stream)."""

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
    assert "model" not in out  # the model id travels in the URL


def test_tools_map_to_tool_specs() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    assert BM.request_body({**body, "tool_choice": "auto"})["toolConfig"] == {
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
        "anthropic_beta": ["token-efficient-tools-2025-02-19"],
        "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
        "additionalModelRequestFields": {"top_k": 5},
        "seed": 7,  # OpenAI's, which Converse has no field for: dropped
    }
    out = BM.request_body(body)
    assert out["guardrailConfig"] == {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
    assert out["additionalModelRequestFields"] == {
        "top_k": 5,  # the caller's own additionalModelRequestFields win
        "anthropic_beta": ["token-efficient-tools-2025-02-19"],
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
        },
        # The part's breakpoint: none goes inside a toolResult, one after it.
        {"cachePoint": {"type": "default"}},
    ]
