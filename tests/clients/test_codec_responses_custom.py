"""The Responses entrance's custom tools, custom tool calls and carried reasoning items
(clients/codec/_responses_custom.py), as the chat body the router gets."""

from __future__ import annotations

from typing import Any

import pytest

from clients import chat_params_to_openai
from clients.codec._responses_request import responses_request_from_openai
from clients.errors import InvalidRequestError

GRAMMAR: Any = {"type": "grammar", "syntax": "lark", "definition": "start: X"}
REASONING: Any = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [{"type": "summary_text", "text": "Thinking."}],
    "encrypted_content": "gAAA1",
}


def chat_body(**body: Any) -> dict[str, Any]:
    return chat_params_to_openai(responses_request_from_openai({"model": "m", **body}).params)


def test_a_custom_tool_and_its_choice() -> None:
    tool = {"type": "custom", "name": "apply_patch", "description": "Edits.", "format": GRAMMAR}
    body = chat_body(
        input="hi", tools=[tool], tool_choice={"type": "custom", "name": "apply_patch"}
    )

    grammar = {"syntax": "lark", "definition": "start: X"}
    assert body["tools"] == [
        {
            "type": "custom",
            "custom": {
                "name": "apply_patch",
                "description": "Edits.",
                "format": {"type": "grammar", "grammar": grammar},
            },
        }
    ]
    assert body["tool_choice"] == {"type": "custom", "custom": {"name": "apply_patch"}}


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "custom"}, "tools[0].name"),
        ({"type": "custom", "name": "t", "format": {"type": "xml"}}, "tools[0].format.type"),
        ({"type": "custom", "name": "t", "format": {**GRAMMAR, "syntax": "ebnf"}},
         "tools[0].format.syntax"),
        ({"type": "browser_search"}, "tools[0].type"),
    ],
)  # fmt: skip
def test_a_tool_that_does_not_translate_is_refused_by_name(tool: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat_body(input="hi", tools=[tool])

    assert caught.value.param == param


def test_reasoning_and_custom_calls_ride_on_their_assistant_turn() -> None:
    call = {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "P"}
    output = {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"}
    said = {"type": "message", "role": "assistant", "content": "Next."}
    go = {"role": "user", "content": "go"}
    body = chat_body(input=[go, REASONING, call, output, {**REASONING, "id": "rs_2"}, said])

    carried = {k: REASONING[k] for k in ("id", "summary", "encrypted_content")}
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": "P"}}
            ],
            "reasoning_items": [carried],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "assistant", "content": "Next.", "reasoning_items": [{**carried, "id": "rs_2"}]},
    ]


def test_reasoning_nothing_follows_or_without_encrypted_content_is_left_out() -> None:
    plain = {"type": "reasoning", "id": "rs_0", "summary": []}
    body = chat_body(input=[plain, {"role": "user", "content": "hi"}, REASONING])

    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_encrypted_reasoning_asked_is_asked_of_the_upstream() -> None:
    assert chat_body(input="hi", include=["reasoning.encrypted_content"])["include"] == [
        "reasoning.encrypted_content"
    ]
    assert "include" not in chat_body(input="hi", include=["message.output_text.logprobs"])
