"""LoadResponses (and LoadConversation) is not counted in rpm: what one client's loads read at
once is bounded (at most LOADS_PER_CLIENT of them read together per replica, the others wait),
so a client calling it in a loop, concurrently, cannot make the router hold its responses (its
conversations) many times over."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import ConversationsConfig, ResponsesConfig
from router_service.responses import LOADS_PER_CLIENT, Conversations, StoredResponses
from router_service.state import MemoryStateStore


class HeldReads(MemoryStateStore):
    """Document reads wait for `go`; counts how many wait at once."""

    def __init__(self) -> None:
        super().__init__(ManualClock())
        self.go = asyncio.Event()
        self.reading = 0
        self.most = 0

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        self.reading += 1
        self.most = max(self.most, self.reading)
        try:
            await self.go.wait()
            return await super().get_documents(names)
        finally:
            self.reading -= 1


async def test_a_clients_loads_read_a_few_at_a_time_and_others_are_not_held() -> None:
    store = HeldReads()
    responses = StoredResponses(store, ManualClock(), ResponsesConfig())
    await responses.save("a", pb.StoredResponse(id="resp_1"))
    await responses.save("b", pb.StoredResponse(id="resp_1"))
    loads = [asyncio.create_task(responses.load("a", ["resp_1"])) for _ in range(10)]
    other = asyncio.create_task(responses.load("b", ["resp_1"]))
    for _ in range(20):
        await asyncio.sleep(0)  # every load gets its chance to start reading
    assert store.reading == store.most == LOADS_PER_CLIENT + 1  # a's first few, and b's
    store.go.set()
    answers = await asyncio.gather(*loads, other)
    assert [[r.id for r in found] for found in answers] == [["resp_1"]] * 11


async def test_a_clients_conversation_loads_read_a_few_at_a_time_too() -> None:
    store = HeldReads()
    conversations = Conversations(store, ManualClock(), ConversationsConfig())
    store.go.set()
    made = await conversations.create("a", pb.CreateConversationRequest())
    store.go.clear()
    conversation_id = made.conversation.id
    loads = [asyncio.create_task(conversations.load("a", conversation_id)) for _ in range(10)]
    for _ in range(20):
        await asyncio.sleep(0)  # every load gets its chance to start reading
    assert store.reading == store.most == LOADS_PER_CLIENT
    store.go.set()
    answers = await asyncio.gather(*loads)
    assert {answer.conversation.id for answer in answers} == {conversation_id}
