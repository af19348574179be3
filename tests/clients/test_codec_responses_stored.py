"""The codec's side of stored responses: item ids lead back to their response, references are
found (and malformed ones refused by path), history splices in after the instructions."""

from __future__ import annotations

import pytest

from clients import (
    History,
    InvalidRequestError,
    ResponseIds,
    history_of,
    references_of,
    responses_request_from_openai,
    stored_response,
)
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb

HEX = "0123456789abcdef" * 2


def test_an_item_id_names_its_response() -> None:
    ids = ResponseIds(f"resp_{HEX}")
    for item_id in (ids.item("msg", 1), ids.item("fc", 3), ids.item("rs", 1)):
        assert ResponseIds.of_item(item_id) == ids
    for foreign in ("msg_", "call_abc", "fc_XYZ", f"msg_{HEX}_x", "item_1", ""):
        assert ResponseIds.of_item(foreign) is None


def test_references_are_found_and_loaded_once_per_response() -> None:
    ids = ResponseIds(f"resp_{HEX}")
    body = {
        "previous_response_id": "resp_prev",
        "input": [
            {"type": "item_reference", "id": ids.item("msg", 1)},
            "not an item",
            {"type": "item_reference", "id": ids.item("fc", 2)},
        ],
    }
    references = references_of(body)
    assert references.previous == "resp_prev"
    assert [path for _, path in references.items] == ["input[0]", "input[2]"]
    assert references.response_ids() == ["resp_prev", ids.response]
    assert not references_of({"input": "text"})
    with pytest.raises(InvalidRequestError) as refused:
        references_of({"input": [{"type": "item_reference", "id": 7}]})
    assert refused.value.param == "input[0].id"


def test_history_goes_after_the_instructions_and_is_stored_without_them() -> None:
    earlier = [chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="before")]
    body = {"model": "m", "instructions": "Be brief.", "input": "now"}
    request = responses_request_from_openai(body, History(messages=earlier))
    assert [m.text for m in request.params.messages] == ["Be brief.", "before", "now"]
    output = [{"id": "msg_1", "type": "message", "role": "assistant", "content": "hi"}]
    stored = stored_response(request, {"id": "resp_1", "output": output})
    assert [m.text for m in stored.messages] == ["before", "now", "hi"]
    references = references_of({"input": [{"type": "item_reference", "id": "msg_1"}]})
    loaded = pb.StoredResponse(id="resp_1", output_items_json=['{"id": "msg_1"}', '{"id": "x"}'])
    assert history_of(references, [loaded]).items == {"msg_1": {"id": "msg_1"}}
