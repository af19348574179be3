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

from fastapi import Request

from clients import (
    History,
    ResponsesRequest,
    RouterClient,
    RouterError,
    conversation_additions,
    conversation_history,
    conversation_of,
)
from clients.switchboard.v1.router_service_pb2 import (
    LoadConversationRequest,
    UpdateConversationRequest,
)
from router_service._ids import MAX_ID_BYTES, shown_id

from ._body import parse_request, read_json_object
from ._errors import EdgeError
from ._metadata import Metadata, forwarded_metadata
from ._should_retry import AnsweredError
from ._state import edge_state
from ._stored import load_history

__all__ = [
    "ConversationKeeper",
    "ResponsesInput",
    "check_inputs",
    "load_conversation",
    "read_responses_input",
]


async def load_conversation(
    client: RouterClient,
    conversation_id: str,
    history: History | None,
    metadata: Metadata,
    timeout_s: float,
    *,
    with_item_ids: bool = False,
) -> tuple[History, frozenset[str], frozenset[str]]:
    """The history `conversation_id`'s items give a request (with `history`'s item
    references), the ids of the items it holds and (`with_item_ids`) of those it deleted."""
    asked = LoadConversationRequest(id=conversation_id, with_item_ids=with_item_ids)
    try:
        loaded = await client.load_conversation(asked, timeout=timeout_s, metadata=metadata)
    except RouterError as exc:
        raise _refusal(exc, conversation_id) from exc
    held = frozenset(item.id for item in loaded.items)
    deleted = frozenset(loaded.item_ids) - held
    return conversation_history(conversation_id, loaded.items, history), held, deleted


def _refusal(exc: RouterError, conversation_id: str) -> Exception:
    """The router's refusal of the load in the request's terms: it names its own field (`id`),
    the request's is `conversation`. An id it refuses as malformed (an empty one) names no
    conversation either: not found, as an empty `previous_response_id` is."""
    details = exc.details
    malformed = details.reason == "INVALID_ARGUMENT" and details.openai_param == "id"
    if details.reason != "CONVERSATION_NOT_FOUND" and not malformed:
        return exc  # not about the id (the router is down, the key is refused…)
    message = f"Conversation with id '{shown_id(conversation_id)}' not found."
    return EdgeError(404, message, code="conversation_not_found", param="conversation")


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
        """Append the items; AnsweredError when the router refuses (the caller is told, and
        told not to retry: the model answered already)."""
        change = UpdateConversationRequest(
            id=self.conversation_id,
            add_items_json=conversation_additions(self.request, response, self.held),
        )
        try:
            await self.client.update_conversation(
                change, timeout=self.timeout_s, metadata=self.metadata
            )
        except RouterError as exc:
            raise AnsweredError(exc.details) from exc


def check_inputs(
    request: ResponsesRequest, held: Collection[str], deleted: Collection[str]
) -> None:
    """Refuse now (a 400 naming `input[i].id`) an input item the conversation would refuse
    once the request is answered (`conversation_inputs`: those it does not hold yet): an id
    that is not a string of 1 to MAX_ID_BYTES bytes, one given twice, or one of an item it
    `deleted` (taken still). Found only then, the call was spent for an answer nothing keeps,
    refused in the router's terms (`items[0].id`)."""
    seen: set[str] = set(deleted)
    for i, item in enumerate(request.input_items):
        item_id, param = item.get("id"), f"input[{i}].id"
        if item_id is None or item_id in held:
            continue
        if not isinstance(item_id, str) or not 1 <= len(item_id.encode()) <= MAX_ID_BYTES:
            message = f"`{param}` must be an item id: a string of 1 to {MAX_ID_BYTES} bytes."
            raise EdgeError(400, message, code="invalid_value", param=param)
        if item_id in seen:
            message = (
                f"Duplicate item id '{item_id}': each input item is added to the "
                "conversation (which keeps a deleted item's id taken)."
            )
            raise EdgeError(400, message, code="invalid_value", param=param)
        seen.add(item_id)


@dataclass(frozen=True)
class ResponsesInput:
    """A Responses API body and what it names, loaded from the router."""

    body: dict[str, Any]
    history: (
        History | None
    )  # its `previous_response_id`'s and `item_reference`s', its conversation's
    conversation_id: str | None
    held: frozenset[str]  # the ids of the items its conversation held when loaded
    deleted: frozenset[str]  # and of those it deleted, when its input items have ids
    metadata: Metadata


async def read_responses_input(request: Request) -> ResponsesInput:
    """The body of a `POST /v1/responses` (or of its token count and compaction) and the
    history it names: the stored responses and items it refers to, and its conversation's items."""
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    metadata = forwarded_metadata(request)
    timeout = state.settings.request_timeout_s
    client = state.router()
    conversation_id = parse_request(conversation_of, body)
    history = await load_history(client, body, metadata, timeout)
    held = deleted = frozenset[str]()
    if conversation_id is not None:
        history, held, deleted = await load_conversation(
            client, conversation_id, history, metadata, timeout, with_item_ids=_has_ids(body)
        )
    return ResponsesInput(body, history, conversation_id, held, deleted, metadata)


def _has_ids(body: dict[str, Any]) -> bool:
    """Whether `body`'s input items name ids (rare: a conversation adds its answers itself):
    only then are the ids of the conversation's deleted items worth loading (`check_inputs`)."""
    items = body.get("input")
    return isinstance(items, list) and any(isinstance(i, dict) and "id" in i for i in items)
