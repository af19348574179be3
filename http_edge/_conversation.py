"""`conversation` on `POST /v1/responses`, the edge's side: the conversation's items are the
request's history (loaded before it is parsed, as a previous response is), and once it is
answered the request's input items and the response's output items are added to it (OpenAI's
behaviour), in one `UpdateConversation`: appended after whatever another request added
meanwhile, on any replica.

An answer that cannot be added (the conversation was deleted meanwhile, or is full) is not
answered as if it had been: the request fails with the router's error (a stream with an `error`
event), so that the caller's next turn does not silently miss it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from clients import (
    History,
    ResponsesRequest,
    RouterClient,
    conversation_additions,
    conversation_history,
)
from clients.switchboard.v1.router_service_pb2 import (
    LoadConversationRequest,
    UpdateConversationRequest,
)

from ._metadata import Metadata

__all__ = ["ConversationKeeper", "load_conversation"]


async def load_conversation(
    client: RouterClient,
    conversation_id: str,
    history: History | None,
    metadata: Metadata,
    timeout_s: float,
) -> tuple[History, frozenset[str]]:
    """The history `conversation_id`'s items give a request (with `history`'s item
    references), and the ids of the items it holds."""
    loaded = await client.load_conversation(
        LoadConversationRequest(id=conversation_id), timeout=timeout_s, metadata=metadata
    )
    held = frozenset(item.id for item in loaded.items)
    return conversation_history(conversation_id, loaded.items, history), held


@dataclass(frozen=True)
class ConversationKeeper:
    """Adds one request's input and its response's output to the conversation it continued."""

    client: RouterClient
    conversation_id: str
    request: ResponsesRequest
    held: Collection[str]  # ids the conversation held when it was loaded
    metadata: Metadata
    timeout_s: float

    async def add(self, response: dict[str, Any]) -> None:
        """Append the items; RouterError when the router refuses (the caller is told)."""
        change = UpdateConversationRequest(
            id=self.conversation_id,
            add_items_json=conversation_additions(self.request, response, self.held),
        )
        await self.client.update_conversation(
            change, timeout=self.timeout_s, metadata=self.metadata
        )
