"""Content parts for Claude: images, files (PDF as document blocks), what Claude cannot take,
cache breakpoints on the blocks they were set on, tool results with images."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _anthropic_map as A
from tests.router_service.providers.test_anthropic_map import USER, body


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
