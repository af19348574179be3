"""Deleting a conversation's item rewrites its record (a compare-and-swap) and keeps the life
`create` gave it to the instant: it was recomputed from `created_at`, whole seconds, so the
conversation went up to a second before its `ttl_s` ended (memory and Redis alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import ConversationsConfig, StateConfig
from router_service.errors import ConversationNotFoundError
from router_service.responses import Conversations
from router_service.state import MemoryStateStore, StateStore, open_store
from tests.replicas.redis_fixtures import redis_state

ITEM = '{"type": "message", "role": "user", "content": "%s"}'
TTL_S = 3600.0
MADE_AT = 1_000_000.9  # in the second `created_at` (1_000_000) names


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore(clock)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    shared = await open_store(StateConfig.model_validate(redis_state(url, prefix)), clock)
    try:
        yield shared
    finally:
        await shared.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MADE_AT)


async def test_an_item_delete_keeps_the_conversations_life_to_the_instant(
    store: StateStore, clock: ManualClock
) -> None:
    conversations = Conversations(store, clock, ConversationsConfig(ttl_s=TTL_S))
    made = await conversations.create(
        "app", pb.CreateConversationRequest(items_json=[ITEM % "m0", ITEM % "m1"])
    )
    conversation_id = made.conversation.id
    first = made.items[0].id
    clock.advance(10.0)
    change = pb.UpdateConversationRequest(id=conversation_id, delete_item_ids=[first])
    await conversations.update("app", change)

    clock.advance(TTL_S - 10.3)  # past created_at + ttl_s, before its end
    loaded = await conversations.load("app", conversation_id)
    assert [item.id for item in loaded.items] == [made.items[1].id]
    clock.advance(0.3)  # its end, as create gave it
    with pytest.raises(ConversationNotFoundError):
        await conversations.load("app", conversation_id)
