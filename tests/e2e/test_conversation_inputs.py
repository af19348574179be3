"""A Responses request continuing a conversation whose input items the conversation could not
take (an id that is not one, or one given twice): refused before the model is called, naming
the request's own field, not after an answer was paid for that nothing then keeps."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.conftest import Open
from tests.e2e.stream_harness import StartEdge


def message(item_id: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "role": "user", "content": "hi"}
    if item_id is not None:
        item["id"] = item_id
    return item


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("ids", "param"),
    [
        ([""], "input[0].id"),
        ([None, "x" * 200], "input[1].id"),
        ([5], "input[0].id"),
        (["msg_twice", None, "msg_twice"], "input[2].id"),
    ],
)
async def test_input_ids_a_conversation_cannot_take_are_refused_before_the_call(
    open_sdk: Open, fake: FakeUpstream, ids: list[Any], param: str, stream: bool
) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create()
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.create(
            model="chain",
            input=[message(i) for i in ids],  # type: ignore[misc]
            conversation=conversation.id,
            stream=stream,
        )
    assert refused.value.param == param
    assert fake.state.last(path="/chat/completions") is None  # nothing spent
    assert (await sdk.conversations.items.list(conversation.id)).data == []


async def test_an_item_the_conversation_holds_may_come_again(open_sdk: Open) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(items=[message("msg_held")])  # type: ignore[list-item]
    answer = await sdk.responses.create(
        model="chain",
        input=[message("msg_held"), message("msg_held"), message()],  # type: ignore[list-item]
        conversation=conversation.id,
    )
    assert answer.status == "completed"
    listed = await sdk.conversations.items.list(conversation.id, order="asc")
    assert listed.data[0].id == "msg_held" and len(listed.data) == 3


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/responses", {}),
        ("/responses", {"stream": True}),
        ("/responses", {"background": True}),
        ("/responses", {"conversation": {"id": "conv_nope"}}),
        ("/responses/input_tokens", {}),
        ("/responses/compact", {}),
    ],
)
async def test_an_unknown_conversation_is_a_404_naming_the_conversation(
    open_sdk: Open, fake: FakeUpstream, path: str, extra: dict[str, Any]
) -> None:
    sdk = await open_sdk()
    body = {"model": "chain", "input": "x", "conversation": "conv_nope", **extra}
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.post(path, body=body, cast_to=object)
    assert (unknown.value.code, unknown.value.param) == ("conversation_not_found", "conversation")
    assert "Conversation with id 'conv_nope' not found." in unknown.value.message
    assert fake.state.last(path="/chat/completions") is None


@pytest.mark.parametrize("stream", [False, True])
async def test_the_id_of_a_deleted_item_is_refused_before_the_call(
    open_sdk: Open, fake: FakeUpstream, stream: bool
) -> None:
    # The conversation keeps a deleted item's id taken (a listing's cursor may stand on it):
    # sent again, the item could not be added once answered.
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(items=[message("msg_gone"), message("msg_kept")])  # type: ignore[list-item]
    await sdk.conversations.items.delete("msg_gone", conversation_id=conversation.id)
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.create(
            model="chain",
            input=[message("msg_kept"), message("msg_gone")],  # type: ignore[list-item]
            conversation=conversation.id,
            stream=stream,
        )
    assert refused.value.param == "input[1].id"
    assert fake.state.last(path="/chat/completions") is None  # nothing spent
    listed = await sdk.conversations.items.list(conversation.id)
    assert [item.id for item in listed.data] == ["msg_kept"]


@pytest.mark.parametrize("conversation", ["", {"id": ""}])
async def test_an_empty_conversation_id_is_one_not_found_naming_the_conversation(
    open_sdk: Open, fake: FakeUpstream, conversation: Any
) -> None:
    # As an empty `previous_response_id`: no conversation has that id (not the router's `id`).
    sdk = await open_sdk()
    body = {"model": "chain", "input": "x", "conversation": conversation}
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.post("/responses", body=body, cast_to=object)
    assert (unknown.value.code, unknown.value.param) == ("conversation_not_found", "conversation")
    assert "Conversation with id '' not found." in unknown.value.message
    assert fake.state.last(path="/chat/completions") is None


async def test_the_deleted_items_ids_are_loaded_only_for_input_items_with_ids(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The common turn (input without ids) loads the conversation's items only: no ids beside.
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router)
    asked: list[bool] = []
    conversations = router.runtime.conversations
    loading = conversations.load

    async def load(client: str, conversation_id: str, *, with_item_ids: bool = False) -> Any:
        asked.append(with_item_ids)
        return await loading(client, conversation_id, with_item_ids=with_item_ids)

    monkeypatch.setattr(conversations, "load", load)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk", max_retries=0
    ) as sdk:
        conversation = await sdk.conversations.create()
        for text in ("hi", [message()], [message("msg_mine")]):
            await sdk.responses.create(model="chain", input=text, conversation=conversation.id)  # type: ignore[arg-type]
    assert asked == [False, False, True]
