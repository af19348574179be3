"""OpenAI's Conversations API: `/v1/conversations` and its items (the SDK's
`client.conversations`, the Agents SDK's `OpenAIConversationsSession`).

The router keeps them (`CreateConversation`, `LoadConversation`, `UpdateConversation`,
`DeleteConversation`: the caller's own, by its client key); the edge translates, one router call
per request. The router's refusals are OpenAI's errors as they are (`Conversation with id '…'
not found.` for an unknown, expired, deleted or another client's id alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    RouterError,
    conversation_items_from_openai,
    conversation_metadata_from_openai,
    conversation_to_openai,
    input_items_page,
)
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._ids import shown_id

from ._body import parse_request, read_json_object
from ._errors import EdgeError
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata
from ._openapi import (
    CONVERSATION,
    CONVERSATION_ID_PARAM,
    CONVERSATION_ITEM_GET,
    CONVERSATION_ITEM_PARAMS,
    CONVERSATION_ITEMS,
    CONVERSATION_ITEMS_LIST,
    CONVERSATION_UPDATE,
    ERRORS,
)
from ._routes_stored import include_query, page_limit, page_order
from ._should_retry import MaybeDoneError
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()
# The router's reason for a state store that did not answer (StoreUnavailableError).
_STATE_UNAVAILABLE = "STATE_UNAVAILABLE"


@router.post("/v1/conversations", openapi_extra=CONVERSATION)
async def create_conversation(request: Request) -> Response:
    body = await _body(request)
    call = pb.CreateConversationRequest(
        metadata_json=parse_request(conversation_metadata_from_openai, body)
    )
    if body.get("items") is not None:
        call.items_json.extend(parse_request(_items, body))
    state = edge_state(request)
    made = await state.router().create_conversation(
        call, timeout=state.settings.request_timeout_s, metadata=forwarded_metadata(request)
    )
    return JSONBytesResponse(conversation_to_openai(made.conversation))


@router.get(
    "/v1/conversations/{conversation_id}", responses=ERRORS, openapi_extra=CONVERSATION_ID_PARAM
)
async def retrieve_conversation(request: Request) -> Response:
    loaded = await _load(request)
    return JSONBytesResponse(conversation_to_openai(loaded.conversation))


@router.post("/v1/conversations/{conversation_id}", openapi_extra=CONVERSATION_UPDATE)
async def update_conversation(request: Request) -> Response:
    body = await _body(request)
    if "metadata" not in body:  # required; null (the SDK's `metadata=None`) clears it
        raise EdgeError(400, "Missing required parameter: 'metadata'.", code=None, param="metadata")
    change = pb.UpdateConversationRequest(
        metadata_json=parse_request(conversation_metadata_from_openai, body)
    )
    changed = await _update(request, change)
    return JSONBytesResponse(conversation_to_openai(changed.conversation))


@router.delete(
    "/v1/conversations/{conversation_id}", responses=ERRORS, openapi_extra=CONVERSATION_ID_PARAM
)
async def delete_conversation(request: Request) -> Response:
    conversation_id: str = request.path_params["conversation_id"]
    state = edge_state(request)
    await state.router().delete_conversation(
        pb.DeleteConversationRequest(id=conversation_id),
        timeout=state.settings.request_timeout_s,
        metadata=forwarded_metadata(request),
    )
    return JSONBytesResponse(
        {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
    )


@router.post("/v1/conversations/{conversation_id}/items", openapi_extra=CONVERSATION_ITEMS)
async def add_items(request: Request) -> Response:
    include_query(request)  # items are answered as kept
    body = await _body(request)
    if body.get("items") is None:
        raise EdgeError(400, "Missing required parameter: 'items'.", code=None, param="items")
    change = pb.UpdateConversationRequest(add_items_json=parse_request(_items, body))
    try:
        changed = await _update(request, change)
    except RouterError as exc:
        if exc.details.reason == _STATE_UNAVAILABLE:  # the append may have landed
            raise MaybeDoneError(exc.details) from exc
        raise
    items = [orjson.loads(item.item_json) for item in changed.added_items]
    page = input_items_page(items, limit=max(1, len(items)), order="asc")
    assert page is not None  # no `after`
    return JSONBytesResponse(page)


@router.get(
    "/v1/conversations/{conversation_id}/items",
    responses=ERRORS,
    openapi_extra=CONVERSATION_ITEMS_LIST,
)
async def list_items(request: Request) -> Response:
    query = request.query_params
    limit, order = page_limit(query.get("limit")), page_order(query.get("order"))
    after = query.get("after")
    include_query(request)  # items are listed as kept, input images with their image_url
    loaded = await _load(request, with_item_ids=after is not None)
    items = [orjson.loads(item.item_json) for item in loaded.items]
    if after is not None:
        items, after = _past_cursor(items, loaded.item_ids, after, order)
    page = input_items_page(items, after=after, limit=limit, order=order)
    if page is None:
        raise EdgeError(
            400,
            f"No item of this conversation has the id '{shown_id(str(after))}'.",
            code="invalid_value",
            param="after",
        )
    return JSONBytesResponse(page)


@router.get(
    "/v1/conversations/{conversation_id}/items/{item_id}",
    responses=ERRORS,
    openapi_extra=CONVERSATION_ITEM_GET,
)
async def retrieve_item(request: Request) -> Response:
    item_id: str = request.path_params["item_id"]
    include_query(request)
    loaded = await _load(request)
    found = next((item for item in loaded.items if item.id == item_id), None)
    if found is None:
        raise _missing_item(item_id)
    return Response(found.item_json.encode(), media_type="application/json")


@router.delete(
    "/v1/conversations/{conversation_id}/items/{item_id}",
    responses=ERRORS,
    openapi_extra=CONVERSATION_ITEM_PARAMS,
)
async def delete_item(request: Request) -> Response:
    item_id: str = request.path_params["item_id"]
    try:
        changed = await _update(request, pb.UpdateConversationRequest(delete_item_ids=[item_id]))
    except RouterError as exc:
        if exc.details.reason != "CONVERSATION_ITEM_NOT_FOUND":
            raise
        # The router names its field (`delete_item_ids[0]`); here the id is the URL's.
        raise _missing_item(item_id) from exc
    return JSONBytesResponse(conversation_to_openai(changed.conversation))


def _past_cursor(
    items: list[dict[str, Any]], all_ids: Sequence[str], after: str, order: str
) -> tuple[list[dict[str, Any]], str | None]:
    """`items` and the `after` to page them from. An item deleted since the caller's last page
    (the SDK's cursor) is no longer listed: the items that stood past it in `order` are, as if
    it were still there."""
    if after not in all_ids or any(item["id"] == after for item in items):
        return items, after
    position = {item_id: i for i, item_id in enumerate(all_ids)}
    cursor = position[after]
    return [item for item in items if (position[item["id"]] > cursor) == (order == "asc")], None


def _missing_item(item_id: str) -> EdgeError:
    message = f"Item with id '{shown_id(item_id)}' not found."
    return EdgeError(404, message, code="item_not_found")


async def _body(request: Request) -> dict[str, Any]:
    return await read_json_object(request, edge_state(request).settings.max_body_bytes)


def _items(body: dict[str, Any]) -> list[str]:
    return conversation_items_from_openai(body["items"], "items")


async def _load(request: Request, *, with_item_ids: bool = False) -> pb.LoadConversationResponse:
    state = edge_state(request)
    asked = pb.LoadConversationRequest(
        id=request.path_params["conversation_id"], with_item_ids=with_item_ids
    )
    loaded: pb.LoadConversationResponse = await state.router().load_conversation(
        asked,
        timeout=state.settings.request_timeout_s,
        metadata=forwarded_metadata(request),
    )
    return loaded


async def _update(
    request: Request, change: pb.UpdateConversationRequest
) -> pb.UpdateConversationResponse:
    change.id = request.path_params["conversation_id"]
    state = edge_state(request)
    changed: pb.UpdateConversationResponse = await state.router().update_conversation(
        change, timeout=state.settings.request_timeout_s, metadata=forwarded_metadata(request)
    )
    return changed
