"""A Responses request's input items as OpenAI lists them: normalized, given ids of their
response's when they came without (which no `item_reference` can name), one page at a time."""

from __future__ import annotations

from typing import Any

import orjson

from clients import ResponseIds, input_items_page, responses_request_from_openai, stored_response

HEX = "0123456789abcdef" * 2


def listed(body: dict[str, Any]) -> list[dict[str, Any]]:
    request = responses_request_from_openai({"model": "m", **body})
    response = {"id": f"resp_{HEX}", "object": "response", "output": [], "store": False}
    stored = stored_response(request, response)
    assert orjson.loads(stored.response_json) == {**response, "store": True}
    return [orjson.loads(text) for text in stored.input_items_json]


def test_input_is_listed_as_items_with_ids() -> None:
    items = listed(
        {
            "input": [
                {"role": "assistant", "content": "before"},
                {"type": "function_call", "id": "fc_given", "call_id": "c1", "name": "f"}
                | {"arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
            ]
        }
    )
    assert items == [
        {
            "id": f"msg_{HEX}_in1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "before", "annotations": []}],
        },
        {"id": "fc_given", "type": "function_call", "call_id": "c1", "name": "f"}
        | {"arguments": "{}", "status": "completed"},
        {"id": f"fco_{HEX}_in3", "type": "function_call_output", "call_id": "c1"}
        | {"output": "42", "status": "completed"},
    ]
    for item in items:  # an input item is not an output item: no reference names it
        assert item["id"] == "fc_given" or ResponseIds.of_item(item["id"]) is None
    (text,) = listed({"input": "hi"})
    assert text["content"] == [{"type": "input_text", "text": "hi"}]


def test_pages_follow_after_in_either_order() -> None:
    items = [{"id": f"i{n}"} for n in range(5)]
    first = input_items_page(items, limit=2)
    assert first is not None
    assert (first["first_id"], first["last_id"], first["has_more"]) == ("i4", "i3", True)
    last = input_items_page(items, after="i1", limit=2, order="asc")
    assert last is not None
    assert ([i["id"] for i in last["data"]], last["has_more"]) == (["i2", "i3"], True)
    end = input_items_page(items, after="i3", order="asc")
    assert end is not None and ([i["id"] for i in end["data"]], end["has_more"]) == (["i4"], False)
    empty = input_items_page([], order="asc")
    nothing: dict[str, Any] = {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    assert empty == nothing
    assert input_items_page(items, after="nope") is None
