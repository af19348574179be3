"""Conversations, the codec's side: OpenAI's Conversations API JSON ⇄ the router's
``Conversation`` / ``ConversationItem`` messages, and what a Responses request's
``conversation`` gives it (:func:`conversation_history`).

Items are kept as OpenAI lists them (``_responses_items``: a message's string content as one
``input_text`` part…) and checked as a Responses ``input`` is (:func:`messages_from_input`), so
that every item a conversation holds can be the history of a later request.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import orjson

from clients.codec._json import at, at_index, dump_json, expect_list, expect_object, expect_str
from clients.codec._messages import message_from_openai
from clients.codec._responses_items import input_items_of, is_item_reference, with_input_ids
from clients.codec._responses_output import ResponseIds
from clients.codec._responses_request import History, ResponsesRequest, messages_from_input
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import conversations_pb2 as cpb

__all__ = [
    "MAX_ITEMS_PER_REQUEST",
    "conversation_additions",
    "conversation_history",
    "conversation_items_from_openai",
    "conversation_metadata_from_openai",
    "conversation_of",
    "conversation_to_openai",
]

MAX_ITEMS_PER_REQUEST = 20  # OpenAI's: "You may add up to 20 items at a time."


def conversation_to_openai(conversation: cpb.Conversation) -> dict[str, Any]:
    """OpenAI's ``conversation`` object."""
    return {
        "id": conversation.id,
        "object": "conversation",
        "created_at": conversation.created_at,
        "metadata": orjson.loads(conversation.metadata_json or "{}"),
    }


def conversation_items_from_openai(value: Any, path: str = "items") -> list[str]:
    """A request's ``items`` (up to 20) as the JSON object strings the router keeps, each as
    OpenAI lists it; refused (InvalidRequestError, by path) when an item could not be a later
    request's history."""
    items = expect_list(value, path)
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise InvalidRequestError(
            f"`{path}` holds {len(items)} items: at most {MAX_ITEMS_PER_REQUEST} can be added "
            "at a time.",
            param=path,
        )
    for i, item in enumerate(items):
        if is_item_reference(expect_object(item, at_index(path, i))):
            raise InvalidRequestError(
                "Item references cannot be added to a conversation: send the item itself.",
                param=at(at_index(path, i), "type"),
            )
    messages_from_input(items, path=path)  # what a later request could not use is refused now
    return [orjson.dumps(item).decode() for item in input_items_of(items, path=path)]


def conversation_metadata_from_openai(body: dict[str, Any]) -> str:
    """A request's ``metadata`` as the JSON object string the router checks and keeps; "" when
    none."""
    value = body.get("metadata")
    return "" if value is None else dump_json(expect_object(value, "metadata"), "metadata")


def conversation_of(body: dict[str, Any]) -> str | None:
    """The id a Responses request's ``conversation`` names (a string or ``{"id": …}``); with
    ``previous_response_id`` too it is refused, as OpenAI refuses it."""
    value = body.get("conversation") if isinstance(body, dict) else None
    if value is None:
        return None
    if body.get("previous_response_id") is not None:
        raise InvalidRequestError(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'."
        )
    if isinstance(value, dict):
        return expect_str(value.get("id"), "conversation.id")
    return expect_str(value, "conversation")


def conversation_history(
    conversation_id: str, items: Sequence[cpb.ConversationItem], history: History | None
) -> History:
    """What the conversation's `items` give a request (its earlier turns, as chat messages),
    beside what `history` (its item references) gives it."""
    listed = [orjson.loads(item.item_json) for item in items]
    messages = [
        message_from_openai(message, "conversation", role_required=True)
        for message in messages_from_input(listed, path="conversation")
    ]
    referenced = history.items if history is not None else {}
    return History(messages, referenced, conversation=conversation_id)


def conversation_additions(
    request: ResponsesRequest, response: dict[str, Any], held: Collection[str]
) -> list[str]:
    """What a finished `response` to `request` adds to the conversation it continued: its
    `conversation_inputs`, then the response's output items."""
    output = [orjson.dumps(item).decode() for item in response.get("output") or []]
    return [*conversation_inputs(request, response["id"], held), *output]


def conversation_inputs(
    request: ResponsesRequest, response_id: str, held: Collection[str]
) -> list[str]:
    """The request's input items a conversation adds (with the ids its stored input items
    have; one the conversation `held` already, sent again by id, is not added twice)."""
    inputs = with_input_ids(request.input_items, ResponseIds(response_id))
    return [orjson.dumps(item).decode() for item in inputs if item["id"] not in held]
