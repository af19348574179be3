"""The Anthropic Messages codec: a body's translation to the OpenAI dialect (and its refusals),
the answer as Anthropic's message, and a stream's events in Anthropic's order."""

from __future__ import annotations

from typing import Any

import pytest

from clients import InvalidRequestError, chat_completion_from_openai, chat_completion_to_openai
from clients.codec.anthropic import (
    TOOL_ERROR_KEY,
    MessageEvents,
    message_to_anthropic,
    messages_request_from_anthropic,
    openai_body,
)

CACHE = {"type": "ephemeral"}
SIGNED = {"type": "thinking", "thinking": "hmm", "signature": "sig-1"}


BODY: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 100,
    "system": [{"type": "text", "text": "Be terse.", "cache_control": CACHE}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
                {"type": "document", "source": {"type": "text", "data": "hi"}, "title": "n"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                SIGNED,
                {"type": "thinking", "thinking": "unsigned: dropped", "signature": ""},
                {"type": "tool_use", "id": "t1", "name": "look", "input": {"q": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "found"},
                {"type": "text", "text": "and?"},
            ],
        },
    ],
    "tools": [{"name": "look", "input_schema": {"type": "object"}, "cache_control": CACHE}],
    "tool_choice": {"type": "tool", "name": "look", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_k": 5,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "u1"},
    "stream": True,
}

CALL = {"id": "t1", "type": "function", "function": {"name": "look", "arguments": '{"q":1}'}}
OPENAI_BODY: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 100,
    "messages": [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Be terse.", "cache_control": CACHE}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:text/plain;base64,aGk=", "filename": "n"},
                },
            ],
        },
        {"role": "assistant", "tool_calls": [CALL], "thinking_blocks": [SIGNED]},
        {"role": "tool", "tool_call_id": "t1", "content": "found"},
        {"role": "user", "content": [{"type": "text", "text": "and?"}]},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "look", "parameters": {"type": "object"}},
            "cache_control": CACHE,
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "look"}},
    "parallel_tool_calls": False,
    "stop": ["END"],
    "temperature": 0.5,
    "top_k": 5,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "user": "u1",
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_a_body_says_the_same_in_the_openai_dialect() -> None:
    assert openai_body(BODY) == OPENAI_BODY
    params, stream = messages_request_from_anthropic(BODY)
    assert stream and params.max_tokens == 100 and len(params.messages) == 5


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"service_tier": "auto"}, "service_tier"),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ]
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "a", "name": "n", "input": {"x": 2**70}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].input",
        ),
    ],
)
def test_what_the_dialect_cannot_say_is_refused_by_its_path(
    change: dict[str, Any], param: str
) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidRequestError) as refused:
        messages_request_from_anthropic({**body, **change})
    assert refused.value.param == param


def test_a_failed_tool_result_carries_its_flag_and_its_content_as_written() -> None:
    def sent(content: Any, is_error: Any) -> Any:
        result = {"type": "tool_result", "tool_use_id": "t1", "content": content}
        call = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
        turns = [{"role": "assistant", "content": [call]}]  # the call the result answers
        turns.append({"role": "user", "content": [{**result, "is_error": is_error}]})
        _, message = openai_body({"model": "m", "max_tokens": 5, "messages": turns})["messages"]
        return message.get(TOOL_ERROR_KEY), message["content"]

    # Each provider says it in its own words (tests/e2e/test_anthropic_tool_errors.py).
    assert (sent("boom", True), sent("", True), sent("ok", False)) == (
        (True, "boom"),
        (True, ""),
        (None, "ok"),
    )
    blocks = [{"type": "text", "text": "boom"}]
    assert sent(blocks, True) == (True, blocks)
    with pytest.raises(InvalidRequestError) as refused:
        sent("x", "yes")
    assert refused.value.param == "messages[1].content[0].is_error"


def test_an_answer_is_anthropics_message() -> None:
    completion = {
        "id": "chatcmpl-1",
        "model": "model-a",
        "choices": [
            {
                "index": 0,
                "finish_reason": "length",
                "message": {
                    "role": "assistant",
                    "content": "partial",
                    "thinking_blocks": [SIGNED],
                    "reasoning_content": "hmm",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a"'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 20},
        },
    }
    assert message_to_anthropic(completion) == {
        "id": "msg_chatcmpl-1",
        "type": "message",
        "role": "assistant",
        "model": "model-a",
        "content": [
            SIGNED,
            {"type": "text", "text": "partial"},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {}},  # cut off mid-call
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 20},
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "msg_up", "model": "claude-x", "choices": [choice]}


def test_a_stream_is_anthropics_events_one_block_after_the_other() -> None:
    stream = MessageEvents("asked")
    events: list[dict[str, Any]] = []
    for delta in (
        {"role": "assistant", "content": ""},
        {"reasoning_content": "hm"},
        {"thinking_blocks": [SIGNED]},
        {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]},
        {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]},
    ):
        events += stream.chunk(_chunk(delta))
    events += stream.chunk(_chunk({}, "tool_calls"))
    events += stream.finish({"prompt_tokens": 9, "completion_tokens": 4})
    said = [
        (e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type"))
        for e in events
    ]
    assert said == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[0]["message"]["id"] == "msg_up" and events[0]["message"]["model"] == "claude-x"
    assert events[3]["delta"]["signature"] == "sig-1"
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 9, "output_tokens": 4}


def test_a_failed_stream_still_starts_and_ends_with_the_error() -> None:
    events = MessageEvents("asked").error("overloaded_error", "busy")
    assert [e["type"] for e in events] == ["message_start", "error"]
    assert events[0]["message"]["model"] == "asked"
    assert events[1]["error"] == {"type": "overloaded_error", "message": "busy"}


def test_interleaved_tool_calls_stream_as_whole_blocks_one_after_the_other() -> None:
    stream = MessageEvents("asked")
    events: list[dict[str, Any]] = []
    for delta in (
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]},
        {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": '{"b"'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": ":2}"}}]},
    ):
        events += stream.chunk(_chunk(delta))
    events += stream.finish({"prompt_tokens": 9, "completion_tokens": 4})
    inputs: dict[int, str] = {}
    open_block = None
    for event in events:  # each delta goes to the block open now, blocks one after the other
        if event["type"] == "content_block_start":
            assert open_block is None and event["index"] == len(inputs)
            open_block, inputs[event["index"]] = event["index"], ""
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_block
            inputs[open_block] += event["delta"]["partial_json"]
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_block
            open_block = None
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [(b["id"], b["name"]) for b in starts] == [("c1", "f"), ("c2", "g")]
    assert inputs == {0: '{"a":1}', 1: '{"b":2}'}


def test_a_stop_sequence_stop_names_the_sequence_the_upstream_said_or_the_text_ends_with() -> None:
    def answer(text: str, **said: Any) -> dict[str, Any]:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, **said}
        completion = {"id": "c", "object": "chat.completion", "created": 1, "model": "m"}
        # Through the router's proto, as the edge gets it (`Choice.matched_stop`).
        carried = chat_completion_from_openai({**completion, "choices": [choice]})
        return chat_completion_to_openai(carried)

    def said(message: dict[str, Any]) -> tuple[str, str | None]:
        return message["stop_reason"], message["stop_sequence"]

    stops = ["END", "##"]
    vllm = answer("done", finish_reason="stop", stop_reason="##")  # an OpenAI-compatible server
    assert said(message_to_anthropic(vllm, stops)) == ("stop_sequence", "##")
    assert said(message_to_anthropic(answer("done END", finish_reason="stop"), stops)) == (
        "stop_sequence",
        "END",
    )
    assert said(message_to_anthropic(answer("done", finish_reason="stop"), stops)) == (
        "end_turn",
        None,
    )
    cut = answer("done END", finish_reason="length", stop_reason="END")
    assert said(message_to_anthropic(cut, stops))[0] == "max_tokens"
    for chunks, expected in (
        (
            [
                _chunk({"content": "do"}),
                {
                    **_chunk({}, "stop"),
                    "choices": [
                        {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "##"}
                    ],
                },
            ],
            ("stop_sequence", "##"),
        ),
        (
            [_chunk({"content": "done E"}), _chunk({"content": "ND"}), _chunk({}, "stop")],
            ("stop_sequence", "END"),
        ),
        ([_chunk({"content": "done"}), _chunk({}, "stop")], ("end_turn", None)),
    ):
        stream = MessageEvents("m", stops)
        for chunk in chunks:
            stream.chunk(chunk)
        delta = stream.finish()[-2]["delta"]
        assert (delta["stop_reason"], delta["stop_sequence"]) == expected


def test_cache_writes_are_apart_from_input_tokens_split_by_ttl() -> None:
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 7,
        "prompt_tokens_details": {
            "cached_tokens": 20,
            "cache_write_tokens": 15,
            "cache_write_1h_tokens": 5,
        },
    }
    answer = message_to_anthropic({"id": "chatcmpl-1", "choices": [{}], "usage": usage})
    assert answer["usage"] == {
        "input_tokens": 5,  # Anthropic's: neither the cache's reads nor its writes
        "output_tokens": 7,
        "cache_creation_input_tokens": 15,
        "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 5},
        "cache_read_input_tokens": 20,
    }
