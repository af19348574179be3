"""The conversations codec: OpenAI's Conversations JSON ⇄ the router's messages, and what
`conversation` on a Responses request gives and leaves."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients import (
    InvalidRequestError,
    ResponseIds,
    conversation_additions,
    conversation_history,
    conversation_items_from_openai,
    conversation_of,
    conversation_to_openai,
    responses_request_from_openai,
)
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import conversations_pb2 as cpb


def test_conversation_names_an_id_as_a_string_or_an_object() -> None:
    assert conversation_of({"conversation": "conv_1"}) == "conv_1"
    assert conversation_of({"conversation": {"id": "conv_2"}}) == "conv_2"
    assert conversation_of({"conversation": None, "previous_response_id": "resp_1"}) is None
    with pytest.raises(InvalidRequestError, match="Mutually exclusive"):
        conversation_of({"conversation": "conv_1", "previous_response_id": "resp_1"})
    with pytest.raises(InvalidRequestError) as bad:
        conversation_of({"conversation": {"id": 3}})
    assert bad.value.param == "conversation.id"


def test_items_are_kept_as_openai_lists_them() -> None:
    kept = conversation_items_from_openai(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "id": "msg_a"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ]
    )
    assert [orjson.loads(text) for text in kept] == [
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
            "type": "message",
            "status": "completed",
        },
        {
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hello", "annotations": []}],
            "id": "msg_a",
            "type": "message",
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "42", "status": "completed"},
    ]


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"role": "user", "content": str(n)} for n in range(21)], "items"),
        ([{"type": "item_reference", "id": "msg_1"}], "items[0].type"),
        ([{"type": "shell_call"}], "items[0].type"),
        ([{"role": "robot", "content": "x"}], "items[0].role"),
        ("hello", "items"),
    ],
)
def test_items_a_later_request_could_not_use_are_refused(items: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        conversation_items_from_openai(items)
    assert refused.value.param == param


def test_a_conversation_is_openais_object() -> None:
    conversation = cpb.Conversation(id="conv_1", created_at=5, metadata_json='{"a": "b"}')
    assert conversation_to_openai(conversation) == {
        "id": "conv_1",
        "object": "conversation",
        "created_at": 5,
        "metadata": {"a": "b"},
    }
    assert conversation_to_openai(cpb.Conversation(id="c"))["metadata"] == {}


def test_the_items_are_the_history_and_the_answer_is_added_after() -> None:
    items = [
        cpb.ConversationItem(id=f"msg_{n}", item_json=text)
        for n, text in enumerate(conversation_items_from_openai([{"role": "user", "content": "a"}]))
    ]
    history = conversation_history("conv_1", items, None)
    assert history.conversation == "conv_1"
    assert [m.role for m in history.messages] == [chat_pb2.ROLE_USER]
    again = {"role": "user", "content": "b", "id": "msg_0"}
    body = {"model": "m", "input": [again, {"role": "user", "content": "c"}]}
    request = responses_request_from_openai({**body, "conversation": "conv_1"}, history)
    assert request.echo["conversation"] == {"id": "conv_1"}
    assert len(request.params.messages) == 3  # the history, then the request's two
    response_id = "resp_" + "ab" * 16
    response: dict[str, Any] = {"id": response_id, "output": [{"type": "message", "id": "m"}]}
    added = [orjson.loads(text) for text in conversation_additions(request, response, {"msg_0"})]
    ids = ResponseIds(response_id)
    # msg_0 is held already; the other input item gets its response's input id.
    assert [item["id"] for item in added] == [ids.input_item("msg", 2), "m"]
