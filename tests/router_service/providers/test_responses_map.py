"""Chat completions ⇄ the Responses API (_responses_map.py, _responses_answer.py,
_responses_stream.py), table-driven: the request, the answer and the stream events, and what
the Responses API cannot carry."""

from __future__ import annotations

from typing import Any

import pytest

from clients import chat_params_from_openai
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._responses_answer import completion_from_response
from router_service.providers._responses_map import cannot_express, request_body
from router_service.providers._responses_stream import ResponsesStream, failure_of_event

USER = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
FN = {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True}


def mapped(**chat: Any) -> dict[str, Any]:
    return request_body({"model": "m", "messages": [USER], **chat}, stream=False)


@pytest.mark.parametrize(
    ("chat", "expected"),
    [
        ({"max_tokens": 20}, {"max_output_tokens": 20}),
        ({"max_completion_tokens": 30}, {"max_output_tokens": 30}),
        ({"reasoning_effort": "low"}, {"reasoning": {"effort": "low", "summary": "auto"}}),
        (
            {"response_format": {"type": "json_object"}},
            {"text": {"format": {"type": "json_object"}}},
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "s", "schema": {}},
                }
            },
            {"text": {"format": {"type": "json_schema", "name": "s", "schema": {}}}},
        ),
        ({"verbosity": "low"}, {"text": {"verbosity": "low"}}),
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
        ({"user": "u", "safety_identifier": "s"}, {"user": "u", "safety_identifier": "s"}),
        ({"metadata": {"k": "v"}}, {"metadata": {"k": "v"}}),
        (
            {"tools": [{"type": "function", "function": FN}], "parallel_tool_calls": False},
            {"tools": [{"type": "function", **FN}], "parallel_tool_calls": False},
        ),
        (
            {
                "tools": [{"type": "function", "function": FN}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
            },
            {
                "tools": [{"type": "function", **FN}],
                "tool_choice": {"type": "function", "name": "f"},
            },
        ),
        (
            {
                "tools": [{"type": "function", "function": FN}],
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {
                        "mode": "required",
                        "tools": [{"type": "function", "function": {"name": "f"}}],
                    },
                },
            },
            {
                "tools": [{"type": "function", **FN}],
                "tool_choice": {
                    "type": "allowed_tools",
                    "mode": "required",
                    "tools": [{"type": "function", "name": "f"}],
                },
            },
        ),
        ({"modalities": ["text"]}, {}),  # what it answers anyway
        ({"parallel_tool_calls": True}, {}),  # not without tools
        ({"stop": ["x"], "stream_options": {"include_usage": True}}, {}),  # the router's, none
        ({"truncation": "auto"}, {"truncation": "auto"}),  # a Responses field: passed through
        ({"logprobs": True}, {"include": ["message.output_text.logprobs"]}),
        (
            {"logprobs": True, "top_logprobs": 2, "include": ["file_search_call.results"]},
            {
                "include": ["file_search_call.results", "message.output_text.logprobs"],
                "top_logprobs": 2,
            },
        ),
        ({"logprobs": False}, {}),
    ],
)
def test_request_options(chat: dict[str, Any], expected: dict[str, Any]) -> None:
    body = mapped(**chat)
    base = {"model", "input", "store"}

    assert {k: v for k, v in body.items() if k not in base} == expected
    assert body["store"] is False


@pytest.mark.parametrize(
    ("message", "items"),
    [
        (
            {"role": "system", "content": "s"},
            [
                {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": "s"}],
                }
            ],
        ),
        (
            {"role": "developer", "content": [{"type": "text", "text": "d"}]},
            [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "d"}],
                }
            ],
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://i/x.png"}}],
            },
            [
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_image", "image_url": "https://i/x.png", "detail": "auto"}
                    ],
                }
            ],
        ),
        (
            {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
            [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_file", "file_id": "file-1"}],
                }
            ],
        ),
        (
            {"role": "assistant", "content": "a", "tool_calls": [CALL]},
            [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "a", "annotations": []}],
                },
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'},
            ],
        ),
        (
            {"role": "tool", "tool_call_id": "call_1", "content": "out"},
            [{"type": "function_call_output", "call_id": "call_1", "output": "out"}],
        ),
    ],
)
def test_messages_become_input_items(message: dict[str, Any], items: list[Any]) -> None:
    assert request_body({"model": "m", "messages": [message]}, stream=True)["input"] == items


@pytest.mark.parametrize(
    ("chat", "param"),
    [
        ({"n": 2}, "n"),
        ({"seed": 1}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
         "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"messages": [{"role": "user", "content": [_audio := {"type": "input_audio",
          "input_audio": {"data": "AA==", "format": "wav"}}]}]}, "messages"),
    ],
)  # fmt: skip
def test_what_it_cannot_carry_is_unsupported_input(chat: dict[str, Any], param: str) -> None:
    params, _ = chat_params_from_openai({"model": "m", "messages": [USER], **chat})
    failure = cannot_express(params)

    assert failure is not None and failure.outcome is Outcome.UNSUPPORTED_INPUT
    assert failure.upstream_error is not None and failure.upstream_error["param"] == param


def test_what_it_carries_is_expressible() -> None:
    body = {"model": "m", "messages": [USER], "n": 1, "logprobs": True, "top_logprobs": 2}
    assert cannot_express(chat_params_from_openai(body)[0]) is None
    body |= {"logprobs": False, "stop": ["x"]}
    del body["top_logprobs"]
    assert cannot_express(chat_params_from_openai(body)[0]) is None
    body["modalities"] = ["text"]
    assert cannot_express(chat_params_from_openai(body)[0]) is None


def test_allowed_tools_of_other_kinds_are_unsupported() -> None:
    choice = {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "mcp", "server_label": "c"}]}}  # fmt: skip
    with pytest.raises(UpstreamFailure) as caught:
        mapped(tools=[{"type": "function", "function": FN}], tool_choice=choice)

    assert caught.value.outcome is Outcome.UNSUPPORTED_INPUT
    assert caught.value.upstream_error is not None
    assert caught.value.upstream_error["param"] == "tool_choice"


def response(output: list[Any], **fields: Any) -> dict[str, Any]:
    usage = {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 14,
    }
    return {"id": "resp_1", "created_at": 7, "model": "m", "status": "completed",
            "output": output, "usage": usage, **fields}  # fmt: skip


def cut(reason: str) -> dict[str, Any]:
    return {"status": "incomplete", "incomplete_details": {"reason": reason}}


TEXT = {"type": "message", "content": [{"type": "output_text", "text": "hello"}]}
THOUGHT = {"type": "reasoning", "summary": [{"text": "a"}, {"text": "b"}]}
FUNCTION = {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}


@pytest.mark.parametrize(
    ("answer", "message", "finish"),
    [
        (response([TEXT]), {"role": "assistant", "content": "hello"}, "stop"),
        (
            response([THOUGHT, TEXT]),
            {"role": "assistant", "content": "hello", "reasoning_content": "a\n\nb"},
            "stop",
        ),
        (
            response([FUNCTION]),
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            "tool_calls",
        ),
        (
            response([TEXT], **cut("max_output_tokens")),
            {"role": "assistant", "content": "hello"},
            "length",
        ),
        (
            response([TEXT], **cut("content_filter")),
            {"role": "assistant", "content": "hello"},
            "content_filter",
        ),
    ],
)  # fmt: skip
def test_the_answer(answer: dict[str, Any], message: dict[str, Any], finish: str) -> None:
    completion = completion_from_response(answer)

    assert completion["choices"] == [{"index": 0, "message": message, "finish_reason": finish}]
    assert (completion["id"], completion["created"], completion["model"]) == ("resp_1", 7, "m")
    assert completion["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 9,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }


STREAM: list[dict[str, Any]] = [
    {"type": "response.created", "response": {"id": "resp_2", "model": "m2", "created_at": 3}},
    {"type": "response.in_progress", "response": {}},
    {"type": "response.reasoning_summary_part.added", "summary_index": 0},
    {"type": "response.reasoning_summary_text.delta", "delta": "think"},
    {"type": "response.reasoning_summary_part.added", "summary_index": 1},
    {"type": "response.output_text.delta", "delta": "he"},
    {"type": "response.output_text.done", "text": "he"},
    {"type": "response.output_item.added",
     "item": {"type": "function_call", "id": "fc_a", "call_id": "c_a", "name": "f"}},
    {"type": "response.output_item.added",
     "item": {"type": "function_call", "id": "fc_b", "call_id": "c_b", "name": "g"}},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_b", "delta": "{}"},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": "{"},
    {"type": "response.completed", "response": response([])},
]  # fmt: skip
DELTAS: list[Any] = [
    {"role": "assistant", "content": ""},
    {"reasoning_content": "think"},
    {"reasoning_content": "\n\n"},
    {"content": "he"},
    {"tool_calls": [{"index": 0, "id": "c_a", "type": "function",
                     "function": {"name": "f", "arguments": ""}}]},
    {"tool_calls": [{"index": 1, "id": "c_b", "type": "function",
                     "function": {"name": "g", "arguments": ""}}]},
    {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
    {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]},
    {},
]  # fmt: skip


def test_the_stream() -> None:
    stream = ResponsesStream("m", 1)
    chunks = [chunk for event in STREAM for chunk in stream.feed(event)]

    assert [c["choices"][0]["delta"] for c in chunks if c["choices"]] == DELTAS
    assert {(c["id"], c["model"], c["created"]) for c in chunks} == {("resp_2", "m2", 3)}
    finish, last = chunks[-2:]
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 9


def test_several_reasoning_items_are_paragraphs() -> None:
    """As the unary answer joins their summaries: a blank line between two items' reasoning."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "r", "model": "m", "created_at": 1}},
        {"type": "response.output_item.added", "item": {"type": "reasoning", "id": "rs_1"}},
        {"type": "response.reasoning_summary_part.added", "summary_index": 0},
        {"type": "response.reasoning_summary_text.delta", "delta": "one"},
        {"type": "response.output_item.added", "item": {"type": "reasoning", "id": "rs_2"}},
        {"type": "response.reasoning_summary_part.added", "summary_index": 0},
        {"type": "response.reasoning_summary_text.delta", "delta": "two"},
    ]
    stream = ResponsesStream("m", 1)
    chunks = [chunk for event in events for chunk in stream.feed(event)]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks)

    assert reasoning == "one\n\ntwo"
    thought = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "one"}]}
    second = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "two"}]}
    answer = completion_from_response(response([thought, second]))
    assert answer["choices"][0]["message"]["reasoning_content"] == reasoning


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow", "param": None},
            {"code": "rate_limit_exceeded", "message": "slow"},
        ),
        (  # as the live API sends it: the fields nested under `error`
            {"type": "error", "sequence_number": 2,
             "error": {"type": "tokens", "code": "rate_limit_exceeded", "message": "slow",
                       "param": None, "headers": {"x-ratelimit-reset-tokens": "6s"}}},
            {"type": "tokens", "code": "rate_limit_exceeded", "message": "slow",
             "headers": {"x-ratelimit-reset-tokens": "6s"}},
        ),
        (
            {"type": "response.failed",
             "response": {"status": "failed", "error": {"code": "server_error", "message": "x"}}},
            {"code": "server_error", "message": "x"},
        ),
        ({"type": "response.output_text.delta", "delta": "x"}, None),
    ],
)  # fmt: skip
def test_failure_events(event: dict[str, Any], error: dict[str, Any] | None) -> None:
    assert failure_of_event(event) == error
