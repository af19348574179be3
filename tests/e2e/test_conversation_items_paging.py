"""Paging a conversation's items with the official `openai` SDK while they change: a cursor
(`after`) on an item deleted since it was listed goes on from where that item stood, as the
SDK's auto-paging needs when a caller clears a conversation item by item."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.conftest import Open


def texts(items: list[Any]) -> list[str]:
    return [item.content[0].text for item in items]


async def made(sdk: openai.AsyncOpenAI, count: int) -> str:
    conversation = await sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": f"m{n}"} for n in range(count)]
    )
    return conversation.id


async def test_deleting_each_item_as_it_is_listed_reaches_them_all(open_sdk: Open) -> None:
    sdk = await open_sdk()
    conversation_id = await made(sdk, 5)
    seen: list[Any] = []
    async for item in sdk.conversations.items.list(conversation_id, limit=2):
        seen.append(item)
        await sdk.conversations.items.delete(str(item.id), conversation_id=conversation_id)
    assert texts(seen) == ["m4", "m3", "m2", "m1", "m0"]
    assert (await sdk.conversations.items.list(conversation_id)).data == []


@pytest.mark.parametrize(("order", "rest"), [("asc", ["m2", "m4"]), ("desc", ["m0"])])
async def test_a_cursor_on_a_deleted_item_goes_on_from_where_it_stood(
    open_sdk: Open, order: Any, rest: list[str]
) -> None:
    sdk = await open_sdk()
    conversation_id = await made(sdk, 5)
    listed = await sdk.conversations.items.list(conversation_id, order="asc")
    ids = [str(item.id) for item in listed.data]
    for gone in (ids[1], ids[3]):
        await sdk.conversations.items.delete(gone, conversation_id=conversation_id)
    page = await sdk.conversations.items.list(conversation_id, order=order, after=ids[1])
    assert texts(page.data) == rest and not page.has_more
    with pytest.raises(openai.BadRequestError) as unknown:  # never one of its items: refused
        await sdk.conversations.items.list(conversation_id, after="msg_" + "0" * 48)
    assert unknown.value.param == "after"


@pytest.mark.parametrize(
    ("order", "pages"), [("asc", [["m5", "m6"], ["m7"]]), ("desc", [["m1", "m0"]])]
)
async def test_a_cursor_among_several_deleted_items_pages_on_with_has_more(
    open_sdk: Open, order: Any, pages: list[list[str]]
) -> None:
    sdk = await open_sdk()
    conversation_id = await made(sdk, 8)
    listed = await sdk.conversations.items.list(conversation_id, order="asc")
    ids = [str(item.id) for item in listed.data]
    for gone in ids[2:5]:  # m2, m3, m4: the cursor and both its neighbours
        await sdk.conversations.items.delete(gone, conversation_id=conversation_id)
    page = await sdk.conversations.items.list(conversation_id, order=order, after=ids[3], limit=2)
    seen = [texts(page.data)]
    while page.has_more:
        page = await sdk.conversations.items.list(
            conversation_id, order=order, after=str(page.last_id), limit=2
        )
        seen.append(texts(page.data))
    assert seen == pages


async def filled(sdk: openai.AsyncOpenAI) -> str:
    """A conversation filled to its `max_bytes` (the next item refused: conversation_too_large)."""
    conversation_id = await made(sdk, 1)
    code = None
    for _ in range(40):
        try:
            await sdk.conversations.items.create(
                conversation_id, items=[{"role": "user", "content": "x" * 150}]
            )
        except openai.BadRequestError as exc:
            code = exc.code
            break
    assert code == "conversation_too_large"
    return conversation_id


async def emptied(sdk: openai.AsyncOpenAI, conversation_id: str) -> None:
    listed = [item async for item in sdk.conversations.items.list(conversation_id, limit=100)]
    assert len(listed) >= 3
    for item in listed:
        await sdk.conversations.items.delete(str(item.id), conversation_id=conversation_id)
    assert (await sdk.conversations.items.list(conversation_id)).data == []


async def test_a_conversation_at_its_max_bytes_can_still_be_emptied_item_by_item(
    open_sdk: Open,
) -> None:
    # Deleting frees room: a conversation filled to `conversations.max_bytes` is cleared as
    # one below it is (each delete was refused as past max_bytes: 400 conversation_too_large).
    sdk = await open_sdk(conversations={"max_bytes": 2000})
    await emptied(sdk, await filled(sdk))


async def test_a_full_conversation_emptied_takes_items_again(open_sdk: Open) -> None:
    # What a deleted item said is no longer kept: emptying a full conversation makes room (its
    # record kept every deleted item whole, so each item added after was refused as too large).
    sdk = await open_sdk(conversations={"max_bytes": 2000})
    conversation_id = await filled(sdk)
    await emptied(sdk, conversation_id)
    for n in range(3):
        await sdk.conversations.items.create(
            conversation_id, items=[{"role": "user", "content": f"again {n}" + "x" * 150}]
        )
    await sdk.conversations.update(conversation_id, metadata={"topic": "again"})
    left = await sdk.conversations.items.list(conversation_id, order="asc")
    assert [text[:7] for text in texts(left.data)] == ["again 0", "again 1", "again 2"]
