"""The conversation RPCs on a real router: authenticated like Chat, scoped per client (another
client's id, an unknown, a deleted and an expired one are one NOT_FOUND), an append-only record
read back as its changes left it, and the bounds of `conversations:` refused with details."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import conversations_pb2 as cpb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.sessions import client_document
from router_service.state import MemoryStateStore, kept_message
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config

A, B, EMBED_ONLY = "sk-client-a", "sk-client-b", "sk-embed-only"


def item(text: str, **extra: Any) -> str:
    return orjson.dumps({"type": "message", "role": "user", "content": text, **extra}).decode()


async def start(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, **conversations: Any
) -> RouterHandle:
    config = guarded_config(
        fake.base_url,
        client("a", A),
        client("b", B),
        client("e", EMBED_ONLY, scopes=["embed"]),
        conversations=conversations,
    )
    return await start_router(config, clock=clock)


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return failed.value


async def test_a_conversation_keeps_its_items_in_order_and_its_changes(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_000_000.0)
    router = await start(fake, start_router, clock)
    request = pb.CreateConversationRequest(
        metadata_json='{"topic": "demo"}', items_json=[item("one"), item("two", id="msg_mine")]
    )
    created = await router.stub.CreateConversation(request, metadata=bearer(A))
    conversation = created.conversation
    assert conversation.id.startswith("conv_") and conversation.created_at == 1_000_000
    assert orjson.loads(conversation.metadata_json) == {"topic": "demo"}
    first, second = created.items
    assert first.id.startswith("msg_") and second.id == "msg_mine"
    assert orjson.loads(first.item_json)["id"] == first.id  # the id is in the item too
    change = pb.UpdateConversationRequest(
        id=conversation.id,
        metadata_json='{"topic": "changed"}',
        add_items_json=[item("three")],
        delete_item_ids=[first.id],
    )
    updated = await router.stub.UpdateConversation(change, metadata=bearer(A))
    assert orjson.loads(updated.conversation.metadata_json) == {"topic": "changed"}
    assert updated.conversation.created_at == 1_000_000  # what the change did not name stays
    loaded = await router.stub.LoadConversation(
        pb.LoadConversationRequest(id=conversation.id), metadata=bearer(A)
    )
    assert [orjson.loads(i.item_json)["content"] for i in loaded.items] == ["two", "three"]
    assert loaded.items[1].id == updated.added_items[0].id
    assert loaded.conversation == updated.conversation
    assert not loaded.item_ids  # asked for: where a deleted item stood, for a listing's cursor
    asked = pb.LoadConversationRequest(id=conversation.id, with_item_ids=True)
    listed = await router.stub.LoadConversation(asked, metadata=bearer(A))
    assert list(listed.item_ids) == [first.id, second.id, updated.added_items[0].id]


async def test_another_clients_unknown_deleted_and_expired_ids_are_one_not_found(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start(fake, start_router, clock, ttl_s=60)
    made = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(A))
    conversation_id = made.conversation.id
    load = pb.LoadConversationRequest(id=conversation_id)
    other = await refusal(router.stub.LoadConversation(load, metadata=bearer(B)))
    unknown = await refusal(
        router.stub.LoadConversation(pb.LoadConversationRequest(id="conv_x"), metadata=bearer(A))
    )
    for failed, named in ((other, conversation_id), (unknown, "conv_x")):
        details = details_from_rpc_error(failed)
        assert failed.code() is grpc.StatusCode.NOT_FOUND
        assert (details.reason, details.openai_code) == (
            "CONVERSATION_NOT_FOUND",
            "conversation_not_found",
        )
        assert details.message == f"Conversation with id '{named}' not found."
    change = pb.UpdateConversationRequest(id=conversation_id, add_items_json=[item("x")])
    assert (await refusal(router.stub.UpdateConversation(change, metadata=bearer(B)))).code() is (
        grpc.StatusCode.NOT_FOUND
    )
    delete = pb.DeleteConversationRequest(id=conversation_id)
    assert (await refusal(router.stub.DeleteConversation(delete, metadata=bearer(B)))).code() is (
        grpc.StatusCode.NOT_FOUND
    )
    clock.advance(59)
    assert (await router.stub.LoadConversation(load, metadata=bearer(A))).conversation.id
    clock.advance(1)
    expired = await refusal(router.stub.LoadConversation(load, metadata=bearer(A)))
    assert details_from_rpc_error(expired).reason == "CONVERSATION_NOT_FOUND"
    made = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(A))
    delete = pb.DeleteConversationRequest(id=made.conversation.id)
    assert (await router.stub.DeleteConversation(delete, metadata=bearer(A))).deleted
    gone = await refusal(router.stub.DeleteConversation(delete, metadata=bearer(A)))
    assert details_from_rpc_error(gone).reason == "CONVERSATION_NOT_FOUND"


async def test_the_calls_need_the_chat_scope(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start(fake, start_router, ManualClock())
    call = router.stub.CreateConversation(
        pb.CreateConversationRequest(), metadata=bearer(EMBED_ONLY)
    )
    assert (await refusal(call)).code() is grpc.StatusCode.PERMISSION_DENIED
    call = router.stub.CreateConversation(pb.CreateConversationRequest())
    assert (await refusal(call)).code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_conversation_past_its_bounds_is_refused_and_left_as_it_was(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router, ManualClock(), max_bytes=2000, max_items=3)
    made = await router.stub.CreateConversation(
        pb.CreateConversationRequest(items_json=[item("a"), item("b")]), metadata=bearer(A)
    )
    conversation_id = made.conversation.id
    too_many = pb.UpdateConversationRequest(
        id=conversation_id, add_items_json=[item("c"), item("d")]
    )
    failed = await refusal(router.stub.UpdateConversation(too_many, metadata=bearer(A)))
    details = details_from_rpc_error(failed)
    assert failed.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert (details.reason, details.openai_code) == (
        "CONVERSATION_TOO_LARGE",
        "conversation_too_large",
    )
    assert "more than 3 items" in details.message
    too_large = pb.UpdateConversationRequest(id=conversation_id, add_items_json=[item("x" * 2000)])
    failed = await refusal(router.stub.UpdateConversation(too_large, metadata=bearer(A)))
    assert "larger than 2000 bytes" in details_from_rpc_error(failed).message
    loaded = await router.stub.LoadConversation(
        pb.LoadConversationRequest(id=conversation_id), metadata=bearer(A)
    )
    assert [orjson.loads(i.item_json)["content"] for i in loaded.items] == ["a", "b"]
    many = pb.CreateConversationRequest(items_json=[item(str(n)) for n in range(21)])
    failed = await refusal(router.stub.CreateConversation(many, metadata=bearer(A)))
    assert details_from_rpc_error(failed).openai_param == "items"


async def test_a_client_past_its_quota_is_refused_until_the_period_ends(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(0.0)
    router = await start(fake, start_router, clock, ttl_s=100, client_bytes=2000)
    request = pb.CreateConversationRequest(items_json=[item("x" * 600)])
    await router.stub.CreateConversation(request, metadata=bearer(A))  # ~1200 bytes counted
    clock.advance(40)
    failed = await refusal(router.stub.CreateConversation(request, metadata=bearer(A)))
    details = details_from_rpc_error(failed)
    assert failed.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (details.reason, details.openai_type) == (
        "CONVERSATION_QUOTA_EXCEEDED",
        "insufficient_quota",
    )
    assert details.retry_after_s == pytest.approx(60.0)  # the period's end
    await router.stub.CreateConversation(request, metadata=bearer(B))  # each client its own
    clock.advance(60)
    await router.stub.CreateConversation(request, metadata=bearer(A))


async def test_items_and_metadata_are_checked_before_anything_is_kept(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router, ManualClock())
    cases = [
        (pb.CreateConversationRequest(items_json=["[1]"]), "items[0]"),
        (
            pb.CreateConversationRequest(items_json=[item("a", id="m"), item("b", id="m")]),
            "items[1].id",
        ),
        (pb.CreateConversationRequest(metadata_json='{"k": 1}'), "metadata.k"),
        (
            pb.CreateConversationRequest(
                metadata_json=orjson.dumps({str(n): "" for n in range(17)}).decode()
            ),
            "metadata",
        ),
    ]
    for request, param in cases:
        failed = await refusal(router.stub.CreateConversation(request, metadata=bearer(A)))
        assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details_from_rpc_error(failed).openai_param == param
    made = await router.stub.CreateConversation(
        pb.CreateConversationRequest(items_json=[item("a", id="msg_1")]), metadata=bearer(A)
    )
    conversation_id = made.conversation.id
    deleted = pb.UpdateConversationRequest(id=conversation_id, delete_item_ids=["msg_1"])
    await router.stub.UpdateConversation(deleted, metadata=bearer(A))
    again = await refusal(router.stub.UpdateConversation(deleted, metadata=bearer(A)))
    details = details_from_rpc_error(again)
    assert (details.reason, details.message) == (
        "CONVERSATION_ITEM_NOT_FOUND",
        "Item with id 'msg_1' not found.",
    )
    reused = pb.UpdateConversationRequest(
        id=conversation_id, add_items_json=[item("b", id="msg_1")]
    )
    failed = await refusal(router.stub.UpdateConversation(reused, metadata=bearer(A)))
    assert details_from_rpc_error(failed).openai_param == "items[0].id"


async def test_an_item_named_many_times_in_one_delete_is_deleted_once(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Deleting is not counted at the quota: an id named again in the same call is not kept
    # again (else one call would fill the conversation's `max_bytes` with ids, quota-free).
    router = await start(fake, start_router, ManualClock(), max_bytes=2000)
    made = await router.stub.CreateConversation(
        pb.CreateConversationRequest(items_json=[item("a"), item("b")]), metadata=bearer(A)
    )
    first, second = made.items
    conversation_id = made.conversation.id
    name = client_document("conv", "a", conversation_id)
    (before,) = await router.runtime.store.get_documents([name])
    assert before is not None
    deleted = pb.UpdateConversationRequest(id=conversation_id, delete_item_ids=[first.id] * 100)
    await router.stub.UpdateConversation(deleted, metadata=bearer(A))
    (after,) = await router.runtime.store.get_documents([name])
    record = kept_message(cpb.ConversationRecord, after)
    assert after is not None and record is not None
    assert list(record.deleted_item_ids) == [first.id]
    assert len(after) - len(before) < 2 * len(first.id)
    loaded = await router.stub.LoadConversation(
        pb.LoadConversationRequest(id=conversation_id), metadata=bearer(A)
    )
    assert [i.id for i in loaded.items] == [second.id]


class ReadsHeld(MemoryStateStore):
    """A store whose reads, once `gate` is armed, answer what they read when it opens (calls
    racing each other all in)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.gate: asyncio.Event | None = None

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        found = await super().get_documents(names)
        if self.gate is not None:
            await self.gate.wait()
        return found


async def test_deletes_of_one_item_racing_each_other_keep_it_once(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Deleting is not counted at the quota: deletes of one item at once (each reading it live
    # before any wrote) must not each write it again, quota-free; one deletes it, the rest 404.
    clock = ManualClock()
    store = ReadsHeld(clock)
    config = guarded_config(fake.base_url, client("a", A), conversations={"max_bytes": 2000})
    router = await start_router(config, clock=clock, store=store)
    made = await router.stub.CreateConversation(
        pb.CreateConversationRequest(items_json=[item("a"), item("b")]), metadata=bearer(A)
    )
    first = made.items[0]
    conversations = router.runtime.conversations
    update, entered, racing = conversations.update, 0, 40

    async def counted(
        who: str, request: pb.UpdateConversationRequest
    ) -> pb.UpdateConversationResponse:
        nonlocal entered
        entered += 1
        if entered == racing and store.gate is not None:
            store.gate.set()  # all in: their reads go on
        return await update(who, request)

    conversations.update = counted  # type: ignore[method-assign,assignment]
    store.gate = asyncio.Event()
    deleted = pb.UpdateConversationRequest(id=made.conversation.id, delete_item_ids=[first.id])
    calls = [router.stub.UpdateConversation(deleted, metadata=bearer(A)) for _ in range(racing)]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    store.gate = None
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(answers) - len(refused) == 1
    assert {a.code() for a in refused} == {grpc.StatusCode.NOT_FOUND}
    name = client_document("conv", "a", made.conversation.id)
    record = kept_message(cpb.ConversationRecord, (await store.get_documents([name]))[0])
    assert record is not None and list(record.deleted_item_ids) == [first.id]
    assert len(conversations._deleting) == 0  # no client's lock kept once its deletes ended
