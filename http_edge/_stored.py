"""Stored responses, the edge's side: load what a Responses request names, keep what it made.

The router stores (`StoreResponse`, `LoadResponses`: per client, with a TTL, in its state
store); the edge only translates. A request's `previous_response_id` and `item_reference`s are
loaded in one call before it is parsed (`History`); a finished response is stored unless the
request said `store: false`, and the Response then says whether it was kept (`store`). A missing
response is OpenAI's 404 in OpenAI's words, whichever of unknown, expired or another client's
it is (the router does not tell them apart either).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clients import (
    History,
    InvalidRequestError,
    References,
    ResponseIds,
    ResponsesRequest,
    RouterClient,
    RouterError,
    history_of,
    references_of,
    stored_response,
)
from clients.switchboard.v1.router_service_pb2 import (
    LoadResponsesRequest,
    StoredResponse,
    StoreResponseRequest,
)
from clients.switchboard.v1.routing_pb2 import RoutingOptions
from router_service._ids import shown_id
from router_service.sessions import caller_session_id, stored_name

from ._body import parse_request
from ._errors import EdgeError
from ._metadata import Metadata

__all__ = ["Keeper", "load_history", "stored_session"]

log = logging.getLogger("http_edge")


async def load_history(
    client: RouterClient, body: dict[str, Any], metadata: Metadata, timeout_s: float
) -> History | None:
    """What the request's references name, from the router; None when it names nothing."""
    references = parse_request(references_of, body)
    if not references:
        return None
    ids = references.response_ids()
    if not ids:  # only item ids this gateway never made
        raise _missing_item(references.items[0][0])
    try:
        loaded = await client.load_responses(
            LoadResponsesRequest(ids=ids), timeout=timeout_s, metadata=metadata
        )
    except RouterError as exc:
        raise _refusal(exc, references, ids) from exc
    _check_finished(loaded.responses, references)
    history = history_of(references, loaded.responses)
    missing = references.missing_items(history)
    if missing:
        raise _missing_item(missing[0][0])
    return history


def _check_finished(responses: Sequence[StoredResponse], references: References) -> None:
    """Only an answered response can be continued: a background one still running, failed or
    cancelled holds no answer to continue from (a 400 naming it)."""
    for response in responses:
        status = response.background_status
        if status and status not in ("completed", "incomplete"):
            param = "previous_response_id" if response.id == references.previous else "input"
            raise EdgeError(
                400,
                f"Response with id '{response.id}' is {status}: only a completed response can "
                "be continued.",
                code="response_not_completed",
                param=param,
            )


def _refusal(exc: RouterError, references: References, ids: list[str]) -> Exception:
    """The router's refusal of a load in the request's terms: which field named what. An id it
    refuses as malformed (an empty one) cannot name a stored response either: not found. Ids
    are repeated as the router repeats them (`shown_id`: not an attacker-sized one whole)."""
    details = exc.details
    if details.reason not in ("RESPONSE_NOT_FOUND", "INVALID_ARGUMENT"):
        return exc  # not about the ids (the router is down, the key is refused…)
    index = _index(details.openai_param)
    if index is None:  # about all of them (storing is off, too many)
        param = "previous_response_id" if references.previous is not None else "input"
        return EdgeError(400, details.message, code=details.openai_code or "", param=param)
    missing = ids[index]
    if missing == references.previous:
        return EdgeError(
            404,
            f"Previous response with id '{shown_id(missing)}' not found.",
            code="previous_response_not_found",
            param="previous_response_id",
        )
    item_id = next(i for i, _ in references.items if _owner(i) == missing)
    return _missing_item(item_id)


def _index(param: str | None) -> int | None:
    """N of the router's `ids[N]`."""
    if param is None or not param.startswith("ids[") or not param.endswith("]"):
        return None
    digits = param[4:-1]
    return int(digits) if digits.isdigit() else None


def _owner(item_id: str) -> str | None:
    owner = ResponseIds.of_item(item_id)
    return owner.response if owner is not None else None


def _missing_item(item_id: str) -> EdgeError:
    message = f"Item with id '{shown_id(item_id)}' not found."
    return EdgeError(404, message, code="item_not_found", param="input")


def stored_session(
    routing: RoutingOptions, request: ResponsesRequest, history: History | None
) -> str:
    """Name the conversation of a Responses request in `routing`, and return the name its
    stored response keeps ("" for none: `sessions.stored_name`). A turn continuing a stored
    response (`previous_response_id`) is named as the conversation's first turn was, by the
    name that response keeps, unless the caller names it (`x-session-id`, `user`…): by
    the opening as stored, redacted, two conversations that differ only in what a rule
    redacts ("Customer: {email}") were one. One continuing what was stored without a name
    (a `conversation`'s items) is named by its opening as stored (`stored_conversation`)."""
    if history is not None and not routing.session_id and not caller_session_id(request.params):
        if history.session_id:
            routing.session_id = history.session_id
        else:
            routing.stored_conversation = True
    return stored_name(routing, request.params) if request.store else ""


@dataclass(frozen=True)
class Keeper:
    """Stores one request's response once it is finished."""

    client: RouterClient
    request: ResponsesRequest
    metadata: Metadata
    timeout_s: float
    session_id: str = ""  # its conversation's (`stored_session`)

    async def keep(self, response: dict[str, Any]) -> None:
        """Store `response` if the request asked, and set its `store` to what happened. A
        failure to store costs the caller the continuation, not the answer: logged."""
        if not self.request.store:
            return
        response["store"] = False  # until the router says it kept it
        try:
            stored = stored_response(self.request, response)
            stored.session_id = self.session_id
            call = StoreResponseRequest(response=stored)
            answer = await self.client.store_response(
                call, timeout=self.timeout_s, metadata=self.metadata
            )
        except RouterError as exc:
            log.warning("storing response %s failed: %s", response["id"], exc.details.message)
            return
        except InvalidRequestError:  # an answer the codec cannot read back: a bug, not fatal
            log.exception("response %s cannot be stored", response["id"])
            return
        response["store"] = answer.stored
