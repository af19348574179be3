"""A conversation's create whose write the shared store ran but whose reply was lost (the store
stopped answering mid-write): the replica keeps the same conversation in its local state and
answers it, never a 503 an SDK would retry (a retry would make a second one and leave the
first behind). The shared store holds that conversation only: the one answered."""

from __future__ import annotations

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import ConversationsConfig
from router_service.responses import Conversations
from router_service.sessions import client_document
from router_service.state import MemoryStateStore, PutResult, ResilientStateStore
from router_service.state._base import StoreUnavailableError

ITEM = '{"type": "message", "role": "user", "content": "hi"}'


class RepliesLost(MemoryStateStore):
    """A shared store that runs each document write, then loses its reply."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.written: list[str] = []

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        await super().put_document(name, data, ttl_s, only_new=only_new)
        self.written.append(name)
        raise StoreUnavailableError("redis: no reply within 0.5s")


async def test_a_create_whose_reply_was_lost_is_answered_once() -> None:
    clock = ManualClock(1_000_000.0)
    shared, local = RepliesLost(clock), MemoryStateStore(clock)
    store = ResilientStateStore(shared, local, clock=clock)
    conversations = Conversations(store, clock, ConversationsConfig())

    made = await conversations.create("app", pb.CreateConversationRequest(items_json=[ITEM]))

    assert store.degraded  # the write's reply was lost: answered from local state
    loaded = await conversations.load("app", made.conversation.id)
    assert loaded.conversation == made.conversation
    # One write reached the shared store, of the conversation answered, and it is there.
    assert shared.written == [client_document("conv", "app", made.conversation.id)]
    assert (await shared.get_documents(shared.written))[0] is not None
