"""Stored responses by id: `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and
`GET /v1/responses/{id}/input_items` (the SDK's `responses.retrieve`, `.delete`,
`.input_items.list`), and `POST /v1/responses/{id}/cancel` (`.cancel`, of a background
response: the router's `CancelResponse`). A background response is retrieved as it stands:
`queued` or `in_progress` (no output yet), then as it ended.

The router keeps them (`LoadResponses`, `DeleteResponse`: the caller's own, by its client key);
the edge answers what it loaded. An unknown, expired or another client's id is the same 404 in
OpenAI's words (`Response with id '…' not found.`). A response stored before the router kept the
Response object itself (`StoredResponse.response_json`) can still be continued and deleted, but
retrieving it, or its input items, is a 404 saying so (`response_not_retrievable`).
"""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import InvalidRequestError, RouterError, include_values, input_items_page
from clients.switchboard.v1.router_service_pb2 import (
    CancelResponseRequest,
    DeleteResponseRequest,
    LoadResponsesRequest,
    StoredResponse,
)
from router_service._ids import shown_id

from ._errors import EdgeError
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata
from ._numbers import shown_number, whole_number
from ._openapi import ERRORS, INPUT_ITEMS_PARAMS, RESPONSE_ID_PARAM, RETRIEVE_PARAMS
from ._resume import resumed_stream
from ._state import edge_state

__all__ = ["include_query", "page_limit", "page_order", "router"]

router = APIRouter()

_MAX_LIMIT = 100  # OpenAI's bound on `limit`
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@router.get("/v1/responses/{response_id}", responses=ERRORS, openapi_extra=RETRIEVE_PARAMS)
async def retrieve_response(request: Request) -> Response:
    include_query(request)  # checked, streamed or not; the Response is what it was made with
    if request.query_params.get("stream", "false").lower() not in ("false", "0"):
        # A streamed background response's events (`starting_after`: after that one).
        state = edge_state(request)
        response_id: str = request.path_params["response_id"]
        after = _starting_after(request)
        metadata = forwarded_metadata(request)
        try:
            return await resumed_stream(request, state.router(), response_id, after, metadata)
        except RouterError as exc:  # before the first event: not found as a retrieve's
            if exc.details.reason != "RESPONSE_NOT_FOUND":
                raise
            raise _refusal(exc, response_id) from exc
    stored = await _load(request)
    return Response(stored.response_json.encode(), media_type="application/json")


@router.delete("/v1/responses/{response_id}", responses=ERRORS, openapi_extra=RESPONSE_ID_PARAM)
async def delete_response(request: Request) -> Response:
    response_id: str = request.path_params["response_id"]
    state = edge_state(request)
    try:
        await state.router().delete_response(
            DeleteResponseRequest(id=response_id),
            timeout=state.settings.request_timeout_s,
            metadata=forwarded_metadata(request),
        )
    except RouterError as exc:
        raise _refusal(exc, response_id) from exc
    return JSONBytesResponse({"id": response_id, "object": "response", "deleted": True})


@router.post(
    "/v1/responses/{response_id}/cancel", responses=ERRORS, openapi_extra=RESPONSE_ID_PARAM
)
async def cancel_response(request: Request) -> Response:
    """Cancel a background response (on whichever replica runs it): the Response, cancelled.
    A finished one, or one not run in the background, is a 400."""
    response_id: str = request.path_params["response_id"]
    state = edge_state(request)
    try:
        answer = await state.router().cancel_response(
            CancelResponseRequest(id=response_id),
            timeout=state.settings.request_timeout_s,
            metadata=forwarded_metadata(request),
        )
    except RouterError as exc:
        raise _refusal(exc, response_id) from exc
    return Response(answer.response_json.encode(), media_type="application/json")


@router.get(
    "/v1/responses/{response_id}/input_items", responses=ERRORS, openapi_extra=INPUT_ITEMS_PARAMS
)
async def list_input_items(request: Request) -> Response:
    query = request.query_params
    limit = page_limit(query.get("limit"))
    order = page_order(query.get("order"))
    after = query.get("after")
    include_query(request)  # input images are listed with their image_url, asked or not
    stored = await _load(request)
    items = [orjson.loads(text) for text in stored.input_items_json]
    page = input_items_page(items, after=after, limit=limit, order=order)
    if page is None:
        raise EdgeError(
            400,
            f"No input item of this response has the id '{shown_id(str(after))}'.",
            code="invalid_value",
            param="after",
        )
    return JSONBytesResponse(page)


async def _load(request: Request) -> StoredResponse:
    """The caller's stored response named by the path, with its Response object."""
    response_id: str = request.path_params["response_id"]  # not a signature parameter
    state = edge_state(request)
    try:
        loaded = await state.router().load_responses(
            LoadResponsesRequest(ids=[response_id]),
            timeout=state.settings.request_timeout_s,
            metadata=forwarded_metadata(request),
        )
    except RouterError as exc:
        raise _refusal(exc, response_id) from exc
    (stored,) = loaded.responses
    if not stored.response_json:
        raise EdgeError(
            404,
            f"Response with id '{response_id}' was stored by an earlier version of this gateway: "
            "it can be continued and deleted, not retrieved.",
            code="response_not_retrievable",
        )
    return stored


def _refusal(exc: RouterError, response_id: str) -> Exception:
    """The router's refusal in OpenAI's words: its not found (an id too long to be one
    included) is OpenAI's 404, repeating what the router repeats of the id (`shown_id`);
    storing turned off is the router's 400."""
    details = exc.details
    if details.reason == "RESPONSE_NOT_FOUND":
        return EdgeError(404, f"Response with id '{shown_id(response_id)}' not found.", code=None)
    if details.reason == "INVALID_ARGUMENT":
        return EdgeError(400, details.message, code=details.openai_code or None)
    return exc


def include_query(request: Request) -> frozenset[str]:
    """The `include` of a query (`include[]=…`, as the SDK sends a list, or `include=…`
    repeated), each one of OpenAI's values, or a 400 naming the first that is not. Reading
    back answers what was stored, so they select nothing more (`clients.codec` says what each
    value gives)."""
    query = request.query_params
    try:
        return include_values([*query.getlist("include[]"), *query.getlist("include")])
    except InvalidRequestError as exc:
        raise EdgeError(400, exc.message, code="invalid_value", param=exc.param) from exc


def page_limit(value: str | None) -> int:
    if value is None:
        return 20
    number = whole_number(value)
    if number is None or not 1 <= number <= _MAX_LIMIT:
        raise EdgeError(
            400,
            f"Invalid 'limit': {shown_number(value)}. It must be an integer from 1 to "
            f"{_MAX_LIMIT}.",
            code="invalid_value",
            param="limit",
        )
    return number


def page_order(value: str | None) -> Literal["asc", "desc"]:
    if value is None or value == "desc":
        return "desc"
    if value == "asc":
        return "asc"
    raise EdgeError(
        400,
        f"Invalid 'order': {value!r}. It must be 'asc' or 'desc'.",
        code="invalid_value",
        param="order",
    )


def _starting_after(request: Request) -> int | None:
    """`starting_after`: a sequence number (none: from the first event)."""
    raw = request.query_params.get("starting_after")
    if raw is None:
        return None
    try:
        after = int(raw)
    except ValueError:
        after = None
    # The router's field is an int64: a larger number is the caller's mistake, not a 500.
    if after is None or not _INT64_MIN <= after <= _INT64_MAX:
        raise EdgeError(
            400,
            "'starting_after' must be an integer (a sequence number).",
            code="invalid_value",
            param="starting_after",
        )
    return after
