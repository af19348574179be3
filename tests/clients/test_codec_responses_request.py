"""Responses API request bodies → ChatParams (`clients.codec._responses_request`)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients import InvalidRequestError, chat_params_to_openai, responses_request_from_openai

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """What the router would send an OpenAI-compatible upstream for this Responses body."""
    return chat_params_to_openai(responses_request_from_openai(body).params)


def refused(body: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        responses_request_from_openai(body)
    return caught.value


def test_a_string_input_with_instructions_and_options() -> None:
    body = {
        "model": "chain",
        "input": "hello",
        "instructions": "Be brief.",
        "temperature": 0.5,
        "top_p": 0.9,
        "max_output_tokens": 50,
        "user": "u-1",
        "safety_identifier": "s-1",
        "prompt_cache_key": "k-1",
        "metadata": {"trace": "t1"},
        "store": True,
        "include": ["reasoning.encrypted_content"],
    }
    assert chat_body(body) == {
        "model": "chain",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "max_completion_tokens": 50,
        "user": "u-1",
        # Passed on as the chat route passes keys it does not model; `store` and `metadata`
        # (repeated in the Response only) are not. Encrypted reasoning is asked of a Responses
        # upstream (the router takes `include` out of any other's call).
        "safety_identifier": "s-1",
        "prompt_cache_key": "k-1",
        "include": ["reasoning.encrypted_content"],
    }
    parsed = responses_request_from_openai(body)
    assert parsed.stream is False
    assert parsed.echo["metadata"] == {"trace": "t1"}
    assert parsed.echo["instructions"] == "Be brief."


def test_message_items_with_parts() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
    pdf = {"type": "input_file", "file_data": "data:application/pdf;base64,JV", "filename": "a.pdf"}
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "Rules."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
            },
            {"role": "user", "content": [image, pdf, {"type": "input_image", "file_id": "file-9"}]},
            {"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]},
        ],
    }
    assert chat_body(body)["messages"] == [
        {"role": "developer", "content": "Rules."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "Hello"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image["image_url"], "detail": "low"}},
                {"type": "file", "file": {"file_data": pdf["file_data"], "filename": "a.pdf"}},
                {"type": "file", "file": {"file_id": "file-9"}},
            ],
        },
        {"role": "user", "content": [{"type": "file", "file": {"file_id": "https://x/a.pdf"}}]},
    ]


def test_function_calls_and_outputs_become_one_assistant_turn_and_tool_messages() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # fed back, has no chat form
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"c":"P"}'},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"c":"R"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "rain"}],
            },
        ],
    }
    assert chat_body(body)["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"c":"P"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"c":"R"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "rain"}]},
    ]


def test_tools_tool_choice_format_and_reasoning() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "model": "m",
        "input": "x",
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}},
        "reasoning": {"effort": "low", "summary": "auto"},
    }
    chat = chat_body(body)
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in TOOL.items() if k != "type"},
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": schema, "strict": True},
    }
    assert chat["reasoning_effort"] == "low"
    assert "reasoning" not in chat  # a chat-level `reasoning` is OpenRouter's object
    for mode in ("auto", "none", "required"):
        with_mode = {"model": "m", "input": "x", "tools": [TOOL], "tool_choice": mode}
        assert chat_body(with_mode)["tool_choice"] == mode
    json_object = {"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}
    assert chat_body(json_object)["response_format"] == {"type": "json_object"}


def test_no_tools_sends_no_tool_options() -> None:
    # The Responses API takes `tools: []` (the Agents SDK sends it for an agent without tools)
    # and tool options beside it; OpenAI's chat API refuses each of them without a tool.
    tools: list[Any] | None
    for tools in ([], None):
        body: dict[str, Any] = {"model": "m", "input": "x", "tools": tools, "tool_choice": "auto"}
        chat = chat_body({**body, "parallel_tool_calls": True})
        assert chat == {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    echo = responses_request_from_openai({"model": "m", "input": "x", "tools": []}).echo
    assert echo["tools"] == []
    with pytest.raises(InvalidRequestError) as caught:  # still checked
        chat_body({"model": "m", "input": "x", "tools": [], "tool_choice": "sometimes"})
    assert caught.value.param == "tool_choice"


def test_logprobs_asked_for_are_asked_of_the_chat_upstream() -> None:
    # Chat completions take `top_logprobs` only with `logprobs: true`.
    chat = chat_body({"model": "m", "input": "x", "top_logprobs": 2})
    assert (chat["logprobs"], chat["top_logprobs"]) == (True, 2)
    include = ["message.output_text.logprobs"]
    assert chat_body({"model": "m", "input": "x", "include": include})["logprobs"] is True
    assert "logprobs" not in chat_body({"model": "m", "input": "x", "include": []})


def test_a_stream_asks_for_usage() -> None:
    parsed = responses_request_from_openai({"model": "m", "input": "x", "stream": True})
    assert parsed.stream is True
    assert chat_params_to_openai(parsed.params)["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "whole conversation"),
        ({"conversation": "conv_1"}, "conversation", "conversation was not loaded"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "stores none"),
        ({"background": True, "store": False}, "store", "requires 'store: true'"),
        ({"tools": [{"type": "browser_search"}]}, "tools[0].type", "hosted tools"),
        ({"tools": [TOOL, {"type": "tool_search"}]}, "tools[1].type", "'tool_search'"),
        ({"tool_choice": {"type": "browser_search"}}, "tool_choice", "tool_choice"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "not loaded"),
        ({"input": [{"type": "shell_call", "id": "sh"}]}, "input[0].type", "not supported"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "Supported values"),
        ({"input": [{"role": "user", "content": [{"type": "x"}]}]}, "input[0].content[0].type", ""),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", "Missing"),
        ({"input": 7}, "input", "expected a string or an array"),
        ({"temperature": "hot"}, "temperature", "expected a number"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", ""),
    ],
)
def test_what_is_refused_names_the_field(extra: dict[str, Any], param: str, words: str) -> None:
    error = refused({"model": "m", "input": "x", **extra})
    assert error.param == param
    assert words in error.message


def test_background_is_parsed_and_not_forwarded() -> None:
    parsed = responses_request_from_openai({"model": "m", "input": "x", "background": True})
    assert parsed.background is True and parsed.store is True
    assert chat_params_to_openai(parsed.params) == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
    }


def test_responses_only_options_are_not_forwarded() -> None:
    # OpenAI's chat API refuses keys it does not know; these bound or compact what this gateway
    # does not do (built-in tools, stored context). The Vercel AI SDK sends them when set.
    body = {"model": "m", "input": "x", "max_tool_calls": 3, "truncation": "auto"}
    body["context_management"] = [{"type": "compaction", "compact_threshold": 1000}]
    assert chat_body(body) == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_stateful_keys_sent_as_null_are_not_used_and_not_forwarded() -> None:
    body = {"model": "m", "input": "x", "previous_response_id": None, "background": False}
    assert chat_body(body) == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_unknown_keys_ride_to_the_upstream_as_on_the_chat_route() -> None:
    body = {"model": "m", "input": "x", "top_k": 5, "thinking": {"type": "enabled"}}
    chat = chat_body(body)
    assert chat["top_k"] == 5 and chat["thinking"] == {"type": "enabled"}


def test_the_echo_has_the_defaults_a_response_shows() -> None:
    echo = responses_request_from_openai({"model": "m", "input": "x"}).echo
    assert echo == {
        "tools": [],
        "tool_choice": "auto",
        "metadata": {},
        "text": {"format": {"type": "text"}},
        "parallel_tool_calls": True,
        "temperature": None,
        "top_p": None,
        "truncation": "disabled",
        "store": True,
    }
    assert orjson.dumps(echo)  # JSON as it is
