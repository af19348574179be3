"""OpenAI chat request JSON ⇄ ChatParams: exact round trips through bytes, and type errors."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from clients import InvalidRequestError, chat_params_from_openai, chat_params_to_openai
from clients.switchboard.v1 import chat_pb2
from tests.clients.json_equal import assert_same_json

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "units": {"enum": ["c", "f"], "default": "c"},
        "threshold": {"type": "number", "multipleOf": 0.5},
    },
    "required": ["city"],
    "additionalProperties": False,
}

RICH_REQUEST: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Prefer JSON."}], "name": "ops"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/cat.png", "detail": "high"},
                },
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-1", "filename": "a.pdf"}},
                {"type": "video_url", "video_url": {"url": "https://x.test/v.mp4"}, "fps": 2},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
            "reasoning_content": "The user wants weather.",
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "It is 21 °C.", "refusal": None},
        {"role": "assistant", "content": None, "function_call": {"name": "old", "arguments": "{}"}},
        {"role": "function", "name": "old", "content": "ok"},
        {"role": "user", "content": []},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city.",
                "parameters": WEATHER_SCHEMA,
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "no_params"}},
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": WEATHER_SCHEMA, "strict": True},
    },
    "stop": "\n\n",
    "n": 2,
    "seed": 42,
    "temperature": 0.7,
    "top_p": 0.9,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.25,
    "max_tokens": 256,
    "max_completion_tokens": 512,
    "logprobs": True,
    "top_logprobs": 3,
    "user": "user-123",
    "metadata": {"team": "search", "ticket": "42"},
    "stream": True,
    "stream_options": {"include_usage": True},
    "parallel_tool_calls": False,
    "logit_bias": {"50256": -100},
    "some_new_field": [1, "a"],
    "reasoning_effort": "low",
}


def round_trip(body: dict[str, Any]) -> tuple[dict[str, Any], chat_pb2.ChatParams, bool]:
    """JSON → proto → bytes → proto → JSON, as the edge and the router do it."""
    params, stream = chat_params_from_openai(copy.deepcopy(body))
    wire = chat_pb2.ChatParams.FromString(params.SerializeToString())
    return chat_params_to_openai(wire), wire, stream


def without_stream(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "stream"}


def test_rich_request_round_trips_exactly() -> None:
    out, _, stream = round_trip(RICH_REQUEST)
    assert stream is True
    assert_same_json(out, without_stream(RICH_REQUEST))
    assert type(out["seed"]) is int
    assert type(out["logit_bias"]["50256"]) is int


def test_rich_request_fills_typed_fields() -> None:
    _, params, _ = round_trip(RICH_REQUEST)
    assert params.model == "gpt-4o"
    assert [m.role for m in params.messages[:3]] == [
        chat_pb2.ROLE_SYSTEM,
        chat_pb2.ROLE_DEVELOPER,
        chat_pb2.ROLE_USER,
    ]
    parts = params.messages[2].parts.parts
    assert [p.WhichOneof("part") for p in parts] == [
        "text",
        "image_url",
        "image_url",
        "input_audio",
        "file",
        "raw_json",
    ]
    assert parts[1].image_url.detail == chat_pb2.IMAGE_DETAIL_HIGH
    assert params.messages[3].tool_calls[0].function.name == "get_weather"
    assert params.messages[3].WhichOneof("content") is None
    assert params.messages[8].WhichOneof("content") == "parts"
    assert params.seed == 42
    assert params.tool_choice.function_name == "get_weather"
    assert params.response_format.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert params.stream_options.include_usage is True
    assert params.HasField("parallel_tool_calls")
    assert not params.parallel_tool_calls
    assert dict(params.metadata) == {"team": "search", "ticket": "42"}


def test_unset_fields_are_not_emitted() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    params, stream = chat_params_from_openai(body)
    assert stream is False
    assert params.extra_json == ""
    assert not params.HasField("temperature")
    assert chat_params_to_openai(params) == body


@pytest.mark.parametrize(
    "tool_choice", ["none", "auto", "required", "any", {"type": "allowed_tools", "mode": "auto"}]
)
def test_tool_choice_shapes(tool_choice: Any) -> None:
    body = {"model": "m", "messages": [], "tool_choice": tool_choice}
    out, params, _ = round_trip(body)
    assert_same_json(out, body)
    expected = "mode" if tool_choice in ("none", "auto", "required") else "raw_json"
    assert params.tool_choice.WhichOneof("choice") == expected


@pytest.mark.parametrize(
    "extra",
    [
        {"stop": ["a", "b"]},
        {"stop": []},
        {"stop": None},
        {"response_format": {"type": "text"}},
        {"response_format": {"type": "json_object"}},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "extra": 1}}},
        {"response_format": {"type": "grammar", "grammar": "root ::= x"}},
        {"stream_options": {}},
        {"stream_options": {"include_usage": False, "include_obfuscation": False}},
        {"tools": []},
        {"tools": [{"type": "custom", "custom": {"name": "grep"}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "x-extension": True}}]},
        {"metadata": {}},
        {"temperature": None, "user": None, "stream": None},
        {"model": ""},
        {"messages": [{"role": "user", "content": "x", "name": None}]},
    ],
)
def test_edge_shapes_round_trip(extra: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    out, _, _ = round_trip(body)
    assert_same_json(out, without_stream(body))


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "assistant", "tool_calls": []},
        {"role": "assistant", "tool_calls": [{"id": "", "type": "", "function": {"name": "f"}}]},
        {"role": "assistant", "function_call": {"arguments": ""}},
        {"role": "assistant", "content": "", "refusal": "no"},
        {"role": "user", "content": [{"type": "image_url", "image_url": "https://x.test/a.png"}]},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "ultra"}}],
        },
        {"role": "user", "content": [{"type": "file", "file": {"file_id": None}}]},
        {"role": "user", "content": [{"type": "text", "text": "a", "extra": {"n": 1}}]},
    ],
)
def test_unusual_messages_round_trip(message: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [message]}
    out, _, _ = round_trip(body)
    assert_same_json(out, body)


def test_router_may_rewrite_typed_fields_over_extras() -> None:
    """Typed fields win over extras: a present-but-empty `model` kept in extras never hides one."""
    params, _ = chat_params_from_openai({"model": "", "messages": []})
    assert params.extra_json == '{"model":"","messages":[]}'
    params.model = "provider-model-id"
    assert chat_params_to_openai(params)["model"] == "provider-model-id"


def test_json_integer_in_double_field_comes_back_as_same_number() -> None:
    out, _, _ = round_trip({"model": "m", "messages": [], "temperature": 1})
    assert out["temperature"] == 1
    assert type(out["temperature"]) is float


VALID: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def with_change(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID | {"tools": [{"type": "function", "function": {"name": "f"}}]})
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "param"),
    [
        (("messages", 0, "content"), 5, "messages[0].content"),
        (("messages", 0, "content"), [{"type": "text", "text": 1}], "messages[0].content[0].text"),
        (("messages", 0, "content"), [{"text": "x"}], "messages[0].content[0].type"),
        (("messages", 0, "content"), ["x"], "messages[0].content[0]"),
        (("messages", 0, "role"), "robot", "messages[0].role"),
        (("messages", 0), "hello", "messages[0]"),
        (("messages", 0, "name"), 7, "messages[0].name"),
        (
            ("messages", 0, "tool_calls"),
            [{"function": {"arguments": {}}}],
            "messages[0].tool_calls[0].function.arguments",
        ),
        (("messages", 0, "tool_calls"), [{"index": 2**40}], "messages[0].tool_calls[0].index"),
        (("messages",), {"role": "user"}, "messages"),
        (("model",), 4, "model"),
        (("temperature",), "hot", "temperature"),
        (("temperature",), True, "temperature"),
        (("max_tokens",), True, "max_tokens"),
        (("max_tokens",), 1.5, "max_tokens"),
        (("max_tokens",), "10", "max_tokens"),
        (("seed",), 2**63, "seed"),
        (("n",), -(2**63) - 1, "n"),
        (("logprobs",), "true", "logprobs"),
        (("parallel_tool_calls",), 1, "parallel_tool_calls"),
        (("stop",), 5, "stop"),
        (("stop",), ["a", 1], "stop[1]"),
        (("metadata",), {"a": 1}, "metadata.a"),
        (("metadata",), ["a"], "metadata"),
        (("tools", 0, "function", "name"), 3, "tools[0].function.name"),
        (("tools", 0, "function", "parameters"), "{}", "tools[0].function.parameters"),
        (("tools", 0, "function", "strict"), "yes", "tools[0].function.strict"),
        (("tools", 0), "get_weather", "tools[0]"),
        (("tools",), {}, "tools"),
        (("tool_choice",), 5, "tool_choice"),
        (
            ("tool_choice",),
            {"type": "function", "function": {"name": 1}},
            "tool_choice.function.name",
        ),
        (("response_format",), "json", "response_format"),
        (("response_format",), {"type": 1}, "response_format.type"),
        (
            ("response_format",),
            {"type": "json_schema", "json_schema": {"schema": []}},
            "response_format.json_schema.schema",
        ),
        (("stream_options",), {"include_usage": "yes"}, "stream_options.include_usage"),
        (("stream",), "yes", "stream"),
        (("some_new_field",), {"big": 2**64}, "some_new_field"),
        (("some_new_field",), {1: "non-string key"}, "some_new_field"),
    ],
)
def test_type_errors_name_the_json_path(path: tuple[Any, ...], value: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat_params_from_openai(with_change(path, value))
    assert info.value.param == param
    assert param in info.value.message


@pytest.mark.parametrize(("missing", "param"), [("model", "model"), ("messages", "messages")])
def test_required_keys(missing: str, param: str) -> None:
    body = {key: value for key, value in VALID.items() if key != missing}
    with pytest.raises(InvalidRequestError) as info:
        chat_params_from_openai(body)
    assert info.value.param == param


def test_missing_role_is_an_error() -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat_params_from_openai({"model": "m", "messages": [{"content": "hi"}]})
    assert info.value.param == "messages[0].role"


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat_params_from_openai([1, 2])  # type: ignore[arg-type]  # not an object, on purpose
    assert info.value.param is None
    assert isinstance(info.value, ValueError)


def test_invalid_request_error_maps_to_a_400_with_its_param() -> None:
    err = InvalidRequestError("bad", param="temperature")
    details = err.to_details()
    assert (err.http_status, details.openai_param, details.field_violations) == (
        400,
        "temperature",
        (("temperature", "bad"),),
    )


def test_bad_extra_json_from_another_language_is_an_invalid_request() -> None:
    params = chat_pb2.ChatParams(model="m", extra_json="[1]")
    with pytest.raises(InvalidRequestError) as info:
        chat_params_to_openai(params)
    assert info.value.param == "extra_json"
    params = chat_pb2.ChatParams(model="m")
    params.messages.add(role=chat_pb2.ROLE_USER, text="x", extra_json="{oops")
    with pytest.raises(InvalidRequestError) as info:
        chat_params_to_openai(params)
    assert info.value.param == "messages[0].extra_json"


@pytest.mark.parametrize("key", ["temperature", "top_p", "presence_penalty", "frequency_penalty"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_that_json_cannot_hold_are_refused_both_ways(key: str, value: float) -> None:
    """orjson would write them upstream as `null`; a Python dict or a protobuf can hold them."""
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], key: value}
    with pytest.raises(InvalidRequestError) as parsed:
        chat_params_from_openai(body)
    params = chat_pb2.ChatParams(model="m")
    setattr(params, key, value)
    with pytest.raises(InvalidRequestError) as written:
        chat_params_to_openai(params)
    assert parsed.value.param == written.value.param == key


def test_stream_is_never_taken_from_extras() -> None:
    """The edge reads `stream` itself and never leaves it in extras; a protobuf built elsewhere
    that carries one is refused rather than sent upstream on a call the router did not stream."""
    params, stream = chat_params_from_openai({"model": "m", "messages": [], "stream": None})
    assert (stream, "stream" in params.extra_json) == (False, False)
    for extra in ('{"stream": true}', '{"stream": false}', '{"seed": 1, "stream": null}'):
        with pytest.raises(InvalidRequestError) as info:
            chat_params_to_openai(chat_pb2.ChatParams(model="m", extra_json=extra))
        assert info.value.param == "extra_json.stream"
