"""Chat completions → Responses API `response` objects (`clients.codec._responses_output`),
checked against the openai SDK's own `Response` model (strict pydantic validation)."""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response

from clients import ResponseIds, response_to_openai, responses_request_from_openai
from clients.codec import chat_completion_from_openai
from clients.codec._responses_include import split_logprobs

IDS = ResponseIds("resp_abc")


def completion(message: dict[str, Any], finish: str = "stop", **usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8, **usage},
    }


def respond(chat: dict[str, Any], **request: Any) -> dict[str, Any]:
    parsed = responses_request_from_openai({"model": "chain", "input": "hi", **request})
    body = response_to_openai(chat_completion_from_openai(chat), parsed, IDS, 100, 101)
    Response.model_validate(body)  # raises when the SDK's model does not accept it
    return body


def test_text_answer() -> None:
    body = respond(
        completion({"role": "assistant", "content": "Hello!"}),
        instructions="Be brief.",
        metadata={"k": "v"},
        temperature=0.2,
        store=True,
    )
    assert body["id"] == "resp_abc" and body["object"] == "response"
    assert body["status"] == "completed" and body["incomplete_details"] is None
    assert body["created_at"] == 100 and body["completed_at"] == 101
    assert body["model"] == "gpt-x"
    assert body["output"] == [
        {
            "id": "msg_abc",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert body["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 8,
    }
    assert body["instructions"] == "Be brief." and body["metadata"] == {"k": "v"}
    assert body["temperature"] == 0.2 and body["tool_choice"] == "auto"
    assert body["store"] is True  # as asked, until the edge knows whether it was kept
    assert Response.model_validate(body).output_text == "Hello!"


def test_tool_calls_and_reasoning() -> None:
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": calls,
        "reasoning_content": "I should call f and g.",
    }
    tools = [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]
    body = respond(
        completion(
            message,
            "tool_calls",
            prompt_tokens_details={"cached_tokens": 2},
            completion_tokens_details={"reasoning_tokens": 1},
        ),
        tools=tools,
    )
    assert body["output"] == [
        {
            "id": "rs_abc",
            "type": "reasoning",
            "status": "completed",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "I should call f and g."}],
        },
        {
            "id": "fc_abc",
            "type": "function_call",
            "call_id": "call_1",
            "name": "f",
            "arguments": '{"a":1}',
            "status": "completed",
        },
        {
            "id": "fc_abc_2",
            "type": "function_call",
            "call_id": "call_2",
            "name": "g",
            "arguments": "{}",
            "status": "completed",
        },
    ]
    assert body["status"] == "completed" and body["tools"] == tools
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 1


def test_a_length_finish_is_incomplete_for_max_output_tokens() -> None:
    body = respond(completion({"role": "assistant", "content": "Once upon"}, "length"))
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    assert "completed_at" not in body


def test_a_content_filter_finish_is_incomplete_for_content_filter() -> None:
    body = respond(completion({"role": "assistant", "content": ""}, "content_filter"))
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "content_filter"}


def test_a_refusal_is_a_refusal_part() -> None:
    body = respond(completion({"role": "assistant", "content": None, "refusal": "No."}))
    assert body["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


def test_settings_are_repeated() -> None:
    schema = {"type": "object", "properties": {}}
    text = {"format": {"type": "json_schema", "name": "S", "schema": schema, "strict": True}}
    body = respond(
        completion({"role": "assistant", "content": "{}"}),
        text=text,
        max_output_tokens=9,
        reasoning={"effort": "low"},
        tool_choice="none",
        parallel_tool_calls=False,
        user="u",
    )
    assert body["text"] == text and body["max_output_tokens"] == 9
    assert body["reasoning"] == {"effort": "low"} and body["tool_choice"] == "none"
    assert body["parallel_tool_calls"] is False and body["user"] == "u"
    assert body["previous_response_id"] is None and body["background"] is False


def test_logprobs_go_with_the_message_their_token_begins_in() -> None:
    # Counted in UTF-8 bytes ("😀" is 4, here two tokens of two bytes); a token that runs past
    # a cut ("c d") goes with the message it begins in; one without bytes counts by its text.
    def entry(token: str, raw: bytes | None) -> dict[str, Any]:
        return {"token": token, "logprob": -0.5, "bytes": list(raw) if raw else []}

    emoji = [entry("\\xf0\\x9f", b"\xf0\x9f"), entry("\\x98\\x80", b"\x98\x80")]
    entries = [entry("ab", b"ab"), *emoji, entry("c d", None), entry("e", b"e")]
    first, second = split_logprobs(entries, ["ab😀c", " de"])

    assert first == entries[:4] and second == entries[4:]
    assert split_logprobs(entries, ["ab😀c de"]) == [entries]
