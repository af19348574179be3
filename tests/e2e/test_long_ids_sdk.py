"""An over-long id through the edge, with the official `openai` SDK: each route that reads a
stored object by id answers OpenAI's 404 for it (the router's NOT_FOUND), and no error body
repeats more than the id's first bytes (tests/router_service/server/test_long_ids.py: the
same over gRPC)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from tests.e2e.conftest import Open
from tests.router_service.server.test_long_ids import LONG, SHOWN


async def _not_found(call: Awaitable[Any]) -> dict[str, Any]:
    with pytest.raises(openai.NotFoundError) as caught:
        await call
    body = caught.value.body
    assert isinstance(body, dict) and LONG not in str(body), body
    return body


async def test_responses_retrieve_delete_and_input_items(open_sdk: Open) -> None:
    sdk = await open_sdk()
    openais = {  # OpenAI's words for a response it does not have
        "message": f"Response with id '{SHOWN}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert await _not_found(sdk.responses.retrieve(LONG)) == openais
    assert await _not_found(sdk.responses.delete(LONG)) == openais
    assert await _not_found(sdk.responses.input_items.list(LONG)) == openais
    previous = sdk.responses.create(model="chain", input="x", previous_response_id=LONG)
    body = await _not_found(previous)
    assert body["message"] == f"Previous response with id '{SHOWN}' not found."
    assert body["code"] == "previous_response_not_found"


async def test_conversations_retrieve_and_items(open_sdk: Open) -> None:
    sdk = await open_sdk()
    for call in (sdk.conversations.retrieve(LONG), sdk.conversations.items.list(LONG)):
        body = await _not_found(call)
        assert body["message"] == f"Conversation with id '{SHOWN}' not found."
        assert body["code"] == "conversation_not_found"
    made = await sdk.conversations.create(items=[{"role": "user", "content": "hi"}])
    item_calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: sdk.conversations.items.retrieve(LONG, conversation_id=made.id),
        lambda: sdk.conversations.items.delete(LONG, conversation_id=made.id),
    ]
    for item_call in item_calls:
        body = await _not_found(item_call())
        assert (body["message"], body["code"]) == (
            f"Item with id '{SHOWN}' not found.",
            "item_not_found",
        )
    with pytest.raises(openai.BadRequestError) as after:  # a page after no item of it
        await sdk.conversations.items.list(made.id, after=LONG)
    assert LONG not in after.value.message and SHOWN in after.value.message


async def test_files_and_batches_retrieve(open_sdk: Open) -> None:
    sdk = await open_sdk()
    body = await _not_found(sdk.files.retrieve(LONG))
    assert (body["message"], body["code"]) == (f"No such File object: {SHOWN}", "file_not_found")
    body = await _not_found(sdk.files.delete(LONG))
    assert body["code"] == "file_not_found"
    body = await _not_found(sdk.batches.retrieve(LONG))
    assert (body["message"], body["code"]) == (f"No batch found with id '{SHOWN}'.", "not_found")
    created = sdk.batches.create(
        input_file_id=LONG, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert (await _not_found(created))["param"] == "input_file_id"
