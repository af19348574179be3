"""Conversations end to end: the official `openai` SDK's `client.conversations` → the edge → the
router (which keeps them in its state store) → and `conversation` on `responses.create`,
plain and streamed, continuing one (the fake upstream sees its history)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import openai
import pytest
from openai.types.responses import EasyInputMessageParam, ResponseCreatedEvent

from router_service.fake_upstream import FakeUpstream
from tests.e2e.conftest import Open

A, B = "sk-client-a", "sk-client-b"


def upstream_messages(fake: FakeUpstream) -> list[dict[str, Any]]:
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    messages: list[dict[str, Any]] = record.body["messages"]
    return messages


def user(text: str) -> dict[str, Any]:
    """A user message as the conversation's item (a list of parts, as OpenAI lists it) becomes
    for the upstream."""
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def texts(items: list[Any]) -> list[str]:
    return [item.content[0].text for item in items]


async def test_the_sdk_creates_lists_pages_updates_and_deletes(open_sdk: Open) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": f"m{n}"} for n in range(5)],
        metadata={"topic": "demo"},
    )
    assert conversation.id.startswith("conv_") and conversation.object == "conversation"
    assert conversation.metadata == {"topic": "demo"} and conversation.created_at > 0
    retrieved = await sdk.conversations.retrieve(conversation.id)
    assert retrieved == conversation
    # Newest first by default (OpenAI's order); the SDK pages on by `after`, two at a time.
    newest = [item async for item in sdk.conversations.items.list(conversation.id, limit=2)]
    assert texts(newest) == ["m4", "m3", "m2", "m1", "m0"]
    page = await sdk.conversations.items.list(conversation.id, limit=2, order="asc")
    assert texts(page.data) == ["m0", "m1"] and page.has_more and page.last_id == page.data[1].id
    first: Any = page.data[0]  # the SDK's ConversationItem union: a Message here
    assert (first.type, first.role, first.status) == ("message", "user", "completed")
    assert first.content[0].type == "input_text"
    added = await sdk.conversations.items.create(
        conversation.id,
        items=[
            {"role": "assistant", "content": "a5"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "m6"}]},
        ],
    )
    added_items: list[Any] = added.data
    assert texts(added_items) == ["a5", "m6"]
    assert added_items[0].content[0].type == "output_text"  # an assistant's, as OpenAI lists it
    item: Any = await sdk.conversations.items.retrieve(
        added_items[0].id, conversation_id=conversation.id
    )
    assert item.id == added_items[0].id and item.role == "assistant"
    updated = await sdk.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"} and updated.id == conversation.id
    after_delete = await sdk.conversations.items.delete(first.id, conversation_id=conversation.id)
    assert after_delete.id == conversation.id and after_delete.metadata == {"topic": "changed"}
    left = [item async for item in sdk.conversations.items.list(conversation.id, order="asc")]
    assert texts(left) == ["m1", "m2", "m3", "m4", "a5", "m6"]
    for missing_item in (
        sdk.conversations.items.retrieve(first.id, conversation_id=conversation.id),
        sdk.conversations.items.delete(first.id, conversation_id=conversation.id),
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            await missing_item
        assert (missing.value.code, missing.value.param) == ("item_not_found", None)
        assert f"Item with id '{first.id}' not found." in missing.value.message
    deleted = await sdk.conversations.delete(conversation.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        conversation.id,
        "conversation.deleted",
        True,
    )
    with pytest.raises(openai.NotFoundError) as gone:
        await sdk.conversations.retrieve(conversation.id)
    assert gone.value.code == "conversation_not_found"
    assert f"Conversation with id '{conversation.id}' not found." in gone.value.message


async def test_a_response_continues_a_conversation_and_is_added_to_it(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "my name is Ann"}]
    )
    first = await sdk.responses.create(
        model="chain", input="what is my name?", conversation=conversation.id, instructions="Brief."
    )
    assert upstream_messages(fake) == [
        {"role": "system", "content": "Brief."},
        user("my name is Ann"),
        {"role": "user", "content": "what is my name?"},
    ]
    assert first.conversation is not None and first.conversation.id == conversation.id
    second = await sdk.responses.create(
        model="chain", input="again?", conversation={"id": conversation.id}
    )
    assert second.output_text == "Echo: again?"
    assert upstream_messages(fake) == [
        user("my name is Ann"),
        user("what is my name?"),
        {"role": "assistant", "content": "Echo: what is my name?"},
        {"role": "user", "content": "again?"},
    ]
    items: list[Any] = [
        item async for item in sdk.conversations.items.list(conversation.id, order="asc")
    ]
    assert [(item.role, item.content[0].text) for item in items] == [
        ("user", "my name is Ann"),
        ("user", "what is my name?"),
        ("assistant", "Echo: what is my name?"),
        ("user", "again?"),
        ("assistant", "Echo: again?"),
    ]
    assert items[2].id == first.output[0].id  # the output item as the response made it


async def test_a_streamed_response_continues_and_extends_a_conversation(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(
        items=[{"role": "user", "content": "I am Bo"}, {"role": "assistant", "content": "Hi Bo"}]
    )
    async with sdk.responses.stream(
        model="chain", input="who am I?", conversation=conversation.id
    ) as stream:
        final = await stream.get_final_response()
    assert final.status == "completed" and final.output_text == "Echo: who am I?"
    assert upstream_messages(fake) == [
        user("I am Bo"),
        {"role": "assistant", "content": "Hi Bo"},
        {"role": "user", "content": "who am I?"},
    ]
    items = [item async for item in sdk.conversations.items.list(conversation.id)]
    assert texts(items[:2]) == ["Echo: who am I?", "who am I?"]  # newest first


async def test_conversation_and_previous_response_id_together_are_a_400(open_sdk: Open) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create()
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.create(
            model="chain", input="x", conversation=conversation.id, previous_response_id="resp_1"
        )
    assert "Mutually exclusive parameters" in refused.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.responses.create(model="chain", input="x", conversation="conv_nope")
    assert unknown.value.code == "conversation_not_found"


async def test_another_client_cannot_see_nor_continue_a_conversation(open_sdk: Open) -> None:
    sdk_a = await open_sdk(keys=(A, B))
    conversation = await sdk_a.conversations.create(items=[{"role": "user", "content": "secret"}])
    async with openai.AsyncOpenAI(
        base_url=str(sdk_a.base_url), api_key=B, max_retries=0, timeout=10
    ) as sdk_b:
        calls: list[Awaitable[Any]] = [
            sdk_b.conversations.retrieve(conversation.id),
            sdk_b.conversations.items.list(conversation.id),
            sdk_b.conversations.items.create(
                conversation.id, items=[{"role": "user", "content": "x"}]
            ),
            sdk_b.conversations.delete(conversation.id),
            sdk_b.responses.create(model="chain", input="x", conversation=conversation.id),
        ]
        for call in calls:
            with pytest.raises(openai.NotFoundError) as hidden:
                await call
            assert hidden.value.message.endswith(
                f"Conversation with id '{conversation.id}' not found."
            )
    assert (await sdk_a.conversations.retrieve(conversation.id)).id == conversation.id


async def test_bounds_are_refused_with_openai_errors(open_sdk: Open) -> None:
    sdk = await open_sdk(conversations={"max_items": 3, "client_bytes": 4000})
    with pytest.raises(openai.BadRequestError) as many:
        await sdk.conversations.create(
            items=[{"role": "user", "content": str(n)} for n in range(21)]
        )
    assert many.value.param == "items" and "at most 20" in many.value.message
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "a"}] * 2)
    with pytest.raises(openai.BadRequestError) as full:
        await sdk.conversations.items.create(
            conversation.id, items=[{"role": "user", "content": "b"}] * 2
        )
    assert full.value.code == "conversation_too_large" and "3 items" in full.value.message
    with pytest.raises(openai.BadRequestError) as full_answer:  # the response would not fit
        await sdk.responses.create(model="chain", input="c", conversation=conversation.id)
    assert full_answer.value.code == "conversation_too_large"
    with pytest.raises(openai.BadRequestError) as odd:
        # An item no later request could use (of a tool not passed on), past the SDK's types.
        await sdk.conversations.create(extra_body={"items": [{"type": "shell_call"}]})
    assert odd.value.param == "items[0].type"
    big: list[EasyInputMessageParam] = [{"role": "user", "content": "x" * 1000}]
    with pytest.raises(openai.RateLimitError) as quota:
        for _ in range(4):
            await sdk.conversations.create(items=big)
    assert quota.value.code == "conversation_quota_exceeded"
    assert quota.value.response.headers["retry-after"]


async def test_an_item_sent_again_by_its_id_is_not_added_twice(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "first"}])
    [held] = [item async for item in sdk.conversations.items.list(conversation.id)]
    again: Any = held.model_dump(exclude_unset=True)  # as the Agents SDK sends history back
    await sdk.responses.create(
        model="chain",
        input=[again, {"role": "user", "content": "next"}],
        conversation=conversation.id,
    )
    assert await contents_of(sdk, conversation.id) == ["first", "next", "Echo: next"]


async def test_a_streamed_answer_its_conversation_cannot_take_ends_failed(
    open_sdk: Open,
) -> None:
    sdk = await open_sdk(conversations={"max_items": 2})
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "a"}])
    async with sdk.responses.stream(
        model="chain", input="b", conversation=conversation.id
    ) as stream:
        events = [event async for event in stream]
    error = next(event for event in events if event.type == "error")
    assert error.code == "conversation_too_large"
    assert events[-1].type == "response.failed"
    assert "response.completed" not in [event.type for event in events]
    # Every event numbered in turn: the answer's items closed, then the error (no numbers
    # skipped for a `response.completed` never sent).
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-3].type == "response.output_item.done"
    assert await contents_of(sdk, conversation.id) == ["a"]  # left as it was
    created = events[0]
    assert isinstance(created, ResponseCreatedEvent)
    with pytest.raises(openai.NotFoundError):  # failed, as the stream said: not kept completed
        await sdk.responses.retrieve(created.response.id)


async def test_an_answer_its_conversation_cannot_take_is_not_kept(open_sdk: Open) -> None:
    """Refused by its conversation, a non-streamed answer is the caller's error, and nothing of
    it is kept: its stored copy, whose id the caller never learned, would fill the client's
    stored bytes (`responses.client_stored_bytes`: room here for one response) for nothing."""
    sdk = await open_sdk(conversations={"max_items": 2}, client_stored_bytes=3_000)
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.BadRequestError) as full:
        await sdk.responses.create(model="chain", input="b", conversation=conversation.id)
    assert full.value.code == "conversation_too_large"
    assert await contents_of(sdk, conversation.id) == ["a"]  # left as it was
    kept = await sdk.responses.create(model="chain", input="c")
    assert kept.to_dict()["store"] is True  # the room was still there


async def contents_of(sdk: openai.AsyncOpenAI, conversation_id: str) -> list[str]:
    items = [item async for item in sdk.conversations.items.list(conversation_id, order="asc")]
    return texts(items)


async def test_metadata_none_clears_it_and_none_given_is_a_400(open_sdk: Open) -> None:
    # The SDK's `update` takes `metadata: Optional[Metadata]` (required, nullable): None is sent
    # as `"metadata": null`, clearing it; only a body without the field misses it.
    sdk = await open_sdk()
    conversation = await sdk.conversations.create(metadata={"topic": "demo"})
    cleared = await sdk.conversations.update(conversation.id, metadata=None)
    assert cleared.metadata == {}
    assert (await sdk.conversations.retrieve(conversation.id)).metadata == {}
    with pytest.raises(openai.BadRequestError) as missing:
        await sdk.post(f"/conversations/{conversation.id}", body={}, cast_to=object)
    assert missing.value.param == "metadata"
