"""Stored responses by id, end to end: the official `openai` SDK's `responses.retrieve`,
`responses.delete` and `responses.input_items.list` → the edge → the router's store. What was
answered comes back as it was (plain and streamed); a deleted, expired or another client's
response is OpenAI's 404."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._ids import shown_id
from router_service.clock import ManualClock
from tests.conftest import RouterHandle
from tests.e2e.conftest import Open

A, B = "sk-client-a", "sk-client-b"


def not_found(response_id: str) -> dict[str, str | None]:
    message = f"Response with id '{response_id}' not found."
    return {"message": message, "type": "invalid_request_error", "param": None, "code": None}


async def test_retrieve_answers_the_response_as_it_was_answered(open_sdk: Open) -> None:
    sdk = await open_sdk()
    raw = await sdk.responses.with_raw_response.create(
        model="chain", input="hello", instructions="Be brief.", metadata={"k": "v"}
    )
    created = raw.http_response.json()
    got = await sdk.responses.with_raw_response.retrieve(created["id"])
    assert got.http_response.json() == created
    retrieved = got.parse()
    assert (retrieved.output_text, retrieved.instructions) == ("Echo: hello", "Be brief.")


async def test_a_streamed_response_is_retrieved_as_completed(open_sdk: Open) -> None:
    sdk = await open_sdk()
    stream = await sdk.responses.create(model="chain", input="streamed words", stream=True)
    (final,) = [e.response async for e in stream if e.type == "response.completed"]
    retrieved = await sdk.responses.retrieve(final.id)
    assert retrieved.model_dump() == final.model_dump()  # `store` (true) included
    assert (retrieved.status, retrieved.output_text) == ("completed", "Echo: streamed words")
    items = await sdk.responses.input_items.list(final.id)
    assert [item.model_dump(exclude_none=True) for item in items.data] == [
        {
            "id": f"msg_{final.id.removeprefix('resp_')}_in1",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": "streamed words"}],
        }
    ]
    await sdk.responses.delete(final.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(final.id)


async def test_retrieving_as_a_stream_is_refused_naming_stream(open_sdk: Open) -> None:
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.retrieve(first.id, stream=True)
    assert caught.value.param == "stream"


async def test_input_items_are_listed_as_given_and_paginated(open_sdk: Open) -> None:
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="one")
    given = [
        {"role": "user", "content": "two", "id": "msg_mine"},
        {"type": "item_reference", "id": first.output[0].id},
        {"role": "user", "content": [{"type": "input_text", "text": "three"}]},
    ]
    second = await sdk.responses.create(model="chain", input=given)  # type: ignore[arg-type]
    default = await sdk.responses.input_items.list(second.id)
    ids = [item.id for item in default.data]
    hex_id = second.id.removeprefix("resp_")
    assert ids == [f"msg_{hex_id}_in3", first.output[0].id, "msg_mine"]  # newest first
    assert default.data[1].model_dump() == first.output[0].model_dump()  # the item it named
    pages = sdk.responses.input_items.list(second.id, order="asc", limit=2)
    assert [item.id async for item in pages] == ids[::-1]  # the SDK follows `after`
    one = await sdk.responses.input_items.list(second.id, limit=1, after=ids[0])
    assert ([item.id for item in one.data], one.has_more) == ([ids[1]], True)


async def test_bad_pagination_is_refused_by_name(open_sdk: Open) -> None:
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="hi")
    for query, param in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"after": "x"}, "after"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.responses.input_items.list(first.id, **query)
        assert caught.value.param == param
    with pytest.raises(openai.BadRequestError) as order:
        await sdk.get(
            f"/responses/{first.id}/input_items",
            cast_to=httpx.Response,
            options={"params": {"order": "up"}},
        )
    assert order.value.param == "order"


async def test_delete_answers_openais_object_then_the_response_is_gone(open_sdk: Open) -> None:
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="forget me")
    deleted = await sdk.responses.with_raw_response.delete(first.id)
    assert deleted.http_response.json() == {"id": first.id, "object": "response", "deleted": True}
    for call in (
        sdk.responses.retrieve(first.id),
        sdk.responses.delete(first.id),
        sdk.responses.input_items.list(first.id),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.body == not_found(first.id)
    with pytest.raises(openai.NotFoundError) as continued:
        await sdk.responses.create(model="chain", input="x", previous_response_id=first.id)
    assert continued.value.code == "previous_response_not_found"


async def test_another_clients_response_is_not_found(open_sdk: Open) -> None:
    sdk_a = await open_sdk(keys=(A, B))
    first = await sdk_a.responses.create(model="chain", input="secret")
    async with openai.AsyncOpenAI(
        base_url=str(sdk_a.base_url), api_key=B, max_retries=0, timeout=10
    ) as sdk_b:
        for call in (
            sdk_b.responses.retrieve(first.id),
            sdk_b.responses.input_items.list(first.id),
            sdk_b.responses.delete(first.id),
        ):
            with pytest.raises(openai.NotFoundError) as caught:
                await call
            assert caught.value.body == not_found(first.id)
    assert (await sdk_a.responses.retrieve(first.id)).output_text == "Echo: secret"


async def test_unknown_and_expired_ids_are_not_found(open_sdk: Open) -> None:
    clock = ManualClock()
    sdk = await open_sdk(clock=clock, store_ttl_s=60)
    absurd = "resp_" + "x" * 200  # longer than any id: one the router does not have
    for response_id in ("resp_nope", absurd):
        with pytest.raises(openai.NotFoundError) as caught:
            await sdk.responses.retrieve(response_id)
        assert caught.value.body == not_found(shown_id(response_id))  # its first bytes only
        with pytest.raises(openai.NotFoundError):
            await sdk.responses.delete(response_id)
    first = await sdk.responses.create(model="chain", input="hi")
    clock.advance(59)
    await sdk.responses.retrieve(first.id)
    clock.advance(1)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.responses.retrieve(first.id)
    assert caught.value.body == not_found(first.id)


async def test_storing_turned_off_is_a_400_saying_so(open_sdk: Open) -> None:
    sdk = await open_sdk(store=False)
    first = await sdk.responses.create(model="chain", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.retrieve(first.id)
    assert "responses.store: false" in caught.value.message


async def test_one_stored_before_responses_were_kept_whole_continues_but_is_not_retrieved(
    router: RouterHandle, sdk: openai.AsyncOpenAI
) -> None:
    hex_id = "a" * 32
    item: dict[str, Any] = {"id": f"msg_{hex_id}", "type": "message", "role": "assistant"}
    item["content"] = [{"type": "output_text", "text": "Echo: old", "annotations": []}]
    old = pb.StoredResponse(  # as the edge stored them before: no Response, no input items
        id=f"resp_{hex_id}",
        messages=[
            chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="old"),
            chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text="Echo: old"),
        ],
        output_items_json=[orjson.dumps(item).decode()],
    )
    await router.stub.StoreResponse(pb.StoreResponseRequest(response=old))
    later = await sdk.responses.create(model="chain", input="new", previous_response_id=old.id)
    assert later.output_text == "Echo: new"
    for call in (sdk.responses.retrieve(old.id), sdk.responses.input_items.list(old.id)):
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.code == "response_not_retrievable"
    await sdk.responses.delete(old.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model="chain", input="x", previous_response_id=old.id)
