"""Stored responses, the codec's side: which stored responses a Responses request names
(``previous_response_id``, ``item_reference`` items), the :class:`History` they give it, and what
a finished response leaves for the next request (:func:`stored_response`).

The HTTP edge loads and stores them through the router (``LoadResponses``, ``StoreResponse``);
this module only knows their shapes. An output item's id says which response it came from
(:meth:`ResponseIds.of_item`), so a reference to it costs no index of items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec._json import at, at_index, expect_str
from clients.codec._messages import message_from_openai
from clients.codec._responses_items import is_item_reference, with_input_ids
from clients.codec._responses_output import ResponseIds
from clients.codec._responses_request import History, ResponsesRequest, messages_from_input
from clients.switchboard.v1 import router_service_pb2 as pb

__all__ = [
    "References",
    "history_of",
    "input_items_json",
    "references_of",
    "stored_document",
    "stored_response",
]


@dataclass(frozen=True)
class References:
    """The stored things a request names."""

    previous: str | None = None  # its `previous_response_id`
    items: tuple[tuple[str, str], ...] = ()  # (item id, the path of its `item_reference`)

    def __bool__(self) -> bool:
        return self.previous is not None or bool(self.items)

    def response_ids(self) -> list[str]:
        """The responses to load, each once: the previous one first, then the items' (an item
        id this gateway did not make names none: it is simply not found)."""
        ids = [self.previous] if self.previous is not None else []
        for item_id, _ in self.items:
            owner = ResponseIds.of_item(item_id)
            if owner is not None and owner.response not in ids:
                ids.append(owner.response)
        return ids

    def missing_items(self, history: History) -> list[tuple[str, str]]:
        """The referenced items the loaded responses do not hold."""
        return [(item_id, path) for item_id, path in self.items if item_id not in history.items]


def references_of(body: dict[str, Any]) -> References:
    """What `body` names; a malformed reference is refused (InvalidRequestError) by its path."""
    if not isinstance(body, dict):
        return References()
    previous = body.get("previous_response_id")
    if previous is not None:
        previous = expect_str(previous, "previous_response_id")
    items = []
    value = body.get("input")
    for i, item in enumerate(value if isinstance(value, list) else ()):
        if isinstance(item, dict) and is_item_reference(item):
            path = at_index("input", i)
            items.append((expect_str(item.get("id"), at(path, "id")), path))
    return References(previous, tuple(items))


def history_of(references: References, responses: Sequence[pb.StoredResponse]) -> History:
    """What the loaded `responses` (those of ``references.response_ids()``) give the request."""
    by_id = {response.id: response for response in responses}
    messages: Sequence[Any] = ()
    session_id = ""
    if references.previous is not None and references.previous in by_id:
        messages = list(by_id[references.previous].messages)
        session_id = by_id[references.previous].session_id
    wanted = {item_id for item_id, _ in references.items}
    items: dict[str, dict[str, Any]] = {}
    for response in responses:
        for text in response.output_items_json:
            item = orjson.loads(text)
            if isinstance(item, dict) and item.get("id") in wanted:
                items[item["id"]] = item
    return History(messages, items, session_id=session_id)


def stored_response(request: ResponsesRequest, response: dict[str, Any]) -> pb.StoredResponse:
    """What a finished `response` to `request` leaves for the next request: the conversation
    (without the instructions) followed by the answer, as chat messages, and the output items;
    and what retrieving it answers: the Response (as stored: `store` true) and the input
    items."""
    conversation = request.params.messages[request.conversation_start :]
    return stored_document(conversation, response, input_items_json(request, response["id"]))


def input_items_json(request: ResponsesRequest, response_id: str) -> list[str]:
    """The request's input items as `StoredResponse.input_items_json` keeps them: with ids."""
    return [
        orjson.dumps(item).decode()
        for item in with_input_ids(request.input_items, ResponseIds(response_id))
    ]


def stored_document(
    conversation: Sequence[Any], response: dict[str, Any], input_items: Sequence[str]
) -> pb.StoredResponse:
    """`stored_response` from its parts: the conversation before the answer (chat messages),
    the finished Response, the input items (JSON strings with their ids)."""
    output = response.get("output") or []
    answer = [
        message_from_openai(message, "output", role_required=True)
        for message in messages_from_input(output, path="output")
    ]
    return pb.StoredResponse(
        id=response["id"],
        messages=[*conversation, *answer],
        output_items_json=[orjson.dumps(item).decode() for item in output],
        response_json=orjson.dumps({**response, "store": True}).decode(),
        input_items_json=input_items,
    )
