"""The codec's typed reads whose common case takes a shortcut (`expect_int`, `expect_int32`,
`merge_extra`, a message's role): what they refuse, and how they say it, is the full check's."""

from __future__ import annotations

from typing import Any, cast

import pytest

from clients import chat_params_from_openai
from clients.codec._json import expect_int, expect_int32, merge_extra
from clients.codec._messages import message_to_openai
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "Invalid type for 'choices[0].index': expected an integer, but got a boolean"),
        (1.0, "Invalid type for 'choices[0].index': expected an integer, but got a number"),
        ("1", "Invalid type for 'choices[0].index': expected an integer, but got a string"),
        (2**31, "Invalid value for 'choices[0].index': integer out of range (2147483648)."),
    ],
)
def test_expect_int32_refuses_what_is_not_one(value: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        expect_int32(value, "choices[0].index")
    assert caught.value.message.startswith(message)
    assert caught.value.param == "choices[0].index"


def test_expect_int_takes_int64_and_refuses_beyond() -> None:
    assert expect_int(2**63 - 1, "created") == 2**63 - 1
    assert expect_int(-(2**63), "created") == -(2**63)
    with pytest.raises(InvalidRequestError, match="out of range"):
        expect_int(2**63, "created")
    with pytest.raises(InvalidRequestError, match="boolean"):
        expect_int(False, "created")


def test_merge_extra_names_the_path_of_bad_json() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        merge_extra({}, "{not json", "choices[0]")
    assert caught.value.param == "choices[0].extra_json"
    assert caught.value.message.startswith("Invalid JSON in 'choices[0].extra_json'")
    with pytest.raises(InvalidRequestError) as caught:
        merge_extra({}, "[1]", "choices[0]")
    assert caught.value.param == "choices[0].extra_json"
    assert merge_extra({"a": 1}, '{"a": 2, "b": 3}', "") == {"a": 1, "b": 3}


def test_an_unknown_role_is_refused_by_its_path() -> None:
    message = chat_pb2.ChatMessage(role=cast(chat_pb2.Role.ValueType, 99), text="hi")
    with pytest.raises(InvalidRequestError) as caught:
        message_to_openai(message, "messages[0]", role_required=True)
    assert caught.value.param == "messages[0].role"
    assert "Invalid enum value 99" in caught.value.message
    known = chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text="hi")
    assert message_to_openai(known, "messages[0]", role_required=True)["role"] == "assistant"


@pytest.mark.parametrize("depth", [240, 300, 900])  # past where it is placed, past the writer
def test_json_nested_too_deep_is_said_in_the_apis_words(depth: int) -> None:
    deep: Any = 1
    for _ in range(depth):
        deep = {"a": deep}
    tool = {"type": "function", "function": {"name": "f", "parameters": deep}}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool]}
    with pytest.raises(InvalidRequestError) as caught:
        chat_params_from_openai(body)
    said = caught.value.message
    assert said == (
        "Invalid value for 'tools[0].function.parameters': it nests too deep to be sent on as JSON."
    )
    assert caught.value.param == "tools[0].function.parameters"
