"""StoredResponses: the router's side of OpenAI's stored responses (`previous_response_id`,
`item_reference`, and reading back or deleting one by id). The HTTP edge translates; the router
keeps (DESIGN.md §1).

Each response is one document in the state store (`StateStore.put_document`: memory, or Redis
shared by the replicas), for `responses.store_ttl_s`, named by a hash of the calling client's
name and the response id (`sessions.client_scoped`, as sessions are scoped): a client can only
ever reach its own, and an unknown, an expired and another client's id are one NOT_FOUND.
Unauthenticated callers (open mode) share theirs with each other, as they share sessions.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from google.protobuf.message import DecodeError

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import Clock
from router_service.config import ResponsesConfig
from router_service.errors import InvalidRequestError, ResponseNotFoundError
from router_service.sessions import client_scoped
from router_service.state import StateStore

__all__ = ["MAX_IDS", "MAX_ID_BYTES", "StoredResponses"]

MAX_IDS = 64  # ids per LoadResponses: one request's previous response and item references
MAX_ID_BYTES = 128  # ids name responses, they do not carry data (and errors repeat them)


class StoredResponses:
    def __init__(self, store: StateStore, clock: Clock, config: ResponsesConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config

    async def save(self, client: str, response: pb.StoredResponse) -> pb.StoreResponseResponse:
        """Keep `response` for `client`, unless storing is off or it is too large."""
        _check_id(response.id, "response.id")
        _check_items(response.output_items_json, "output_items_json")
        _check_items(response.input_items_json, "input_items_json")
        if response.response_json:
            _check_object(response.response_json, "response.response_json")
        if not self._config.store:
            return pb.StoreResponseResponse(stored=False, reason="disabled")
        data = response.SerializeToString()
        ttl_s = self._config.store_ttl_s
        if len(data) > self._config.max_stored_bytes:
            return pb.StoreResponseResponse(stored=False, reason="too_large")
        if not await self._store.put_document(_name(client, response.id), data, ttl_s):
            return pb.StoreResponseResponse(stored=False, reason="too_large")  # for memory
        return pb.StoreResponseResponse(stored=True, expires_unix=self._clock.now() + ttl_s)

    async def load(self, client: str, ids: Sequence[str]) -> list[pb.StoredResponse]:
        """`client`'s responses of `ids`, in order; ResponseNotFoundError names the first one
        missing (`ids[N]`)."""
        if not self._config.store:
            raise InvalidRequestError(
                "Stored responses are turned off on this router (responses.store: false): send "
                "the whole conversation instead of referring to an earlier response.",
                param="ids",
                code="stored_responses_disabled",
            )
        if not 1 <= len(ids) <= MAX_IDS:
            raise InvalidRequestError(f"`ids` must hold 1 to {MAX_IDS} ids.", param="ids")
        for i, response_id in enumerate(ids):
            _check_id(response_id, f"ids[{i}]")
        documents = await self._store.get_documents([_name(client, i) for i in ids])
        found = []
        for i, (response_id, data) in enumerate(zip(ids, documents, strict=True)):
            response = _parsed(data)
            # The id inside guards against a (128-bit) hash collision with another's name.
            if response is None or response.id != response_id:
                raise ResponseNotFoundError(response_id, param=f"ids[{i}]")
            found.append(response)
        return found

    async def delete(self, client: str, response_id: str) -> None:
        """Delete `client`'s response `response_id`; ResponseNotFoundError when it has none.
        Deleting works with storing turned off too: what was stored before can still go."""
        _check_id(response_id, "id")
        if not await self._store.delete_document(_name(client, response_id)):
            raise ResponseNotFoundError(response_id, param="id")


def _name(client: str, response_id: str) -> str:
    return "resp:" + client_scoped(client, response_id)


def _parsed(data: bytes | None) -> pb.StoredResponse | None:
    if data is None:
        return None
    try:
        return pb.StoredResponse.FromString(data)
    except DecodeError:  # not ours (a foreign writer under the prefix): as good as absent
        return None


def _check_items(items: Sequence[str], field: str) -> None:
    for i, text in enumerate(items):
        _check_object(text, f"response.{field}[{i}]")


def _check_object(text: str, param: str) -> None:
    """Items and the Response are read back as JSON objects (the edge resolves
    `item_reference`s by their "id", and answers them as they are): what is not one is refused
    now rather than failing a later request."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"`{param}` must be a JSON object.", param=param)


def _check_id(response_id: str, param: str) -> None:
    if not response_id or len(response_id.encode()) > MAX_ID_BYTES:
        raise InvalidRequestError(
            f"`{param}` must be a response id of 1 to {MAX_ID_BYTES} bytes.", param=param
        )
