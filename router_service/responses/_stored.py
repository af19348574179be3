"""StoredResponses: the router's side of OpenAI's stored responses (`previous_response_id`,
`item_reference`, and reading back or deleting one by id). The HTTP edge translates; the router
keeps (DESIGN.md §1).

Each response is one document in the state store (`StateStore.put_document`: memory, or Redis
shared by the replicas), for `responses.store_ttl_s`, named by a hash of the calling client's
name and the response id (`sessions.client_scoped`, as sessions are scoped): a client can only
ever reach its own, and an unknown, an expired and another client's id are one NOT_FOUND.
A response is written once: storing an id its client holds already is ALREADY_EXISTS, and the
stored one stays as it was (a caller knowing an id could otherwise replace the conversation that
continuing it loads); once deleted or expired the id can be stored again.
Unauthenticated callers (open mode) share theirs with each other, as they share sessions.

Neither call counts in rpm (each is part of a chat call that does), so each is bounded here: a
client stores at most `responses.client_stored_bytes` per period of `store_ttl_s`, a load reads
at most `server.max_message_bytes`, and a client's loads read a few at a time. What each client
stored this period is read for an operator by `quota_reading` (AdminService.ListClients).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._ids import checked_id, looked_up_id
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.config import ResponsesConfig
from router_service.errors import InvalidRequestError, ResponseExistsError, ResponseNotFoundError
from router_service.responses._conversation_items import checked_object
from router_service.sessions import client_document, client_scoped, session_digest
from router_service.state import ByteQuota, PutResult, QuotaReading, StateStore, kept_message

__all__ = [
    "ENTRY_BYTES",
    "LOADS_PER_CLIENT",
    "MAX_IDS",
    "StoredResponses",
    "response_name",
]

MAX_IDS = 64  # ids per LoadResponses: one request's previous response and item references
# What a stored response costs its client's quota besides its bytes: its key and entry, so that
# many tiny documents are not free.
ENTRY_BYTES = 512
# LoadResponses of one client that read at once (per replica); the others wait their turn.
LOADS_PER_CLIENT = 4
_READ_BATCH = 8  # documents per read: a load past its bound stops within 8 MiB of it


class StoredResponses:
    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        config: ResponsesConfig,
        *,
        max_load_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        # What one LoadResponses may read: the router's request bound (`server.max_message_bytes`;
        # a conversation larger than that cannot be continued by a chat call anyway).
        self._max_load_bytes = max_load_bytes
        # Loads are not counted in rpm: a client's run together up to LOADS_PER_CLIENT, the
        # others wait, so what loads hold at once is bounded per client (client names are
        # configured: the map is bounded).
        self._loading: dict[str, asyncio.Semaphore] = {}
        self._quota = ByteQuota(
            store, clock, limit_bytes=config.client_stored_bytes, period_s=config.store_ttl_s
        )

    async def save(
        self, client: str, response: pb.StoredResponse, *, ttl_s: float | None = None
    ) -> pb.StoreResponseResponse:
        """Keep `response` for `client` (`ttl_s`, `store_ttl_s` unless told), unless storing is
        off, it is too large or its client stored its quota this period. Written once:
        ResponseExistsError when the client has a live response of that id (it is left as it
        was)."""
        checked_id(response.id, "response.id", "response")
        _check_items(response.output_items_json, "output_items_json")
        _check_items(response.input_items_json, "input_items_json")
        if response.response_json:
            answered = checked_object(response.response_json, "response.response_json")
            # Read back as `GET /v1/responses/{id}`: one naming another response is a mix-up.
            if answered.get("id", response.id) != response.id:
                raise InvalidRequestError(
                    "`response.response_json` has another `id` than `response.id`.",
                    param="response.response_json",
                )
        if not self._config.store:
            return pb.StoreResponseResponse(stored=False, reason="disabled")
        # Its session's name as a digest, whoever sent it: never a caller's id in clear.
        response.session_id = session_digest(response.session_id)
        data = response.SerializeToString()
        ttl_s = self._config.store_ttl_s if ttl_s is None else ttl_s
        if len(data) > self._config.max_stored_bytes:
            return pb.StoreResponseResponse(stored=False, reason="too_large")
        size = len(data) + ENTRY_BYTES
        # What a client stores per period (`client_stored_bytes` per `store_ttl_s`, shared by
        # replicas); documents live one period, so it holds at most twice that.
        bucket = await self._quota.room(_quota_name(client), size)
        if bucket is None:
            return pb.StoreResponseResponse(stored=False, reason="over_quota")
        name = response_name(client, response.id)
        kept = await self._store.put_document(name, data, ttl_s, only_new=True)
        if kept is PutResult.EXISTS:
            raise ResponseExistsError(response.id, param="response.id")
        if kept is PutResult.TOO_LARGE:  # for the memory store's room
            return pb.StoreResponseResponse(stored=False, reason="too_large")
        # Counted once kept (nothing for a refusal), and to the end: a caller leaving now must
        # not have stored it for free.
        await uncut(self._quota.charge(_quota_name(client), bucket, size))
        return pb.StoreResponseResponse(stored=True, expires_unix=self._clock.now() + ttl_s)

    async def charge(self, client: str, size: int) -> None:
        """Count `size` bytes `client` keeps beside its responses (a streamed background
        response's events, once it ended) in its quota's current period: after the fact, so
        they refuse what it stores next, not themselves."""
        name = _quota_name(client)
        await self._quota.charge(name, self._quota.reading([name]).bucket, size)

    def quota_reading(self, clients: Sequence[str]) -> QuotaReading:
        """What reading the stored-bytes quota of `clients` takes (their current period, now);
        `""` is open mode's callers without a key, as the calls name them."""
        return self._quota.reading([_quota_name(client) for client in clients])

    async def _read(self, client: str, ids: Sequence[str]) -> list[bytes | None]:
        names = [response_name(client, i) for i in ids]
        loading = self._loading.setdefault(client, asyncio.Semaphore(LOADS_PER_CLIENT))
        async with loading:
            return await _read_batches(self._store, names, self._max_load_bytes)

    async def load(self, client: str, ids: Sequence[str]) -> list[pb.StoredResponse]:
        """`client`'s responses of `ids`, in order; ResponseNotFoundError names the first one
        missing (`ids[N]`)."""
        self._check_stored("ids")
        if not 1 <= len(ids) <= MAX_IDS:
            raise InvalidRequestError(f"`ids` must hold 1 to {MAX_IDS} ids.", param="ids")
        return await self._load(client, ids, [f"ids[{i}]" for i in range(len(ids))])

    async def load_one(self, client: str, response_id: str) -> pb.StoredResponse:
        """`client`'s response `response_id`, for a method that names one by its `id`
        (CancelResponse, ResumeResponse): its refusals name that field, not `load`'s `ids`."""
        self._check_stored("id")
        (found,) = await self._load(client, [response_id], ["id"])
        return found

    async def _load(
        self, client: str, ids: Sequence[str], params: Sequence[str]
    ) -> list[pb.StoredResponse]:
        """`ids`' responses; each refusal names the id's own field (`params`, in order)."""
        for response_id, param in zip(ids, params, strict=True):
            _looked_up(response_id, param)
        documents = await self._read(client, ids)
        found = []
        for response_id, param, data in zip(ids, params, documents, strict=True):
            response = kept_message(pb.StoredResponse, data)
            # The id inside guards against a (128-bit) hash collision with another's name.
            if response is None or response.id != response_id:
                raise ResponseNotFoundError(response_id, param=param)
            # One stored before names its session as the caller did: read as its digest.
            response.session_id = session_digest(response.session_id)
            found.append(response)
        return found

    def _check_stored(self, param: str) -> None:
        if not self._config.store:
            raise InvalidRequestError(
                "Stored responses are turned off on this router (responses.store: false): send "
                "the whole conversation instead of referring to an earlier response.",
                param=param,
                code="stored_responses_disabled",
            )

    async def delete(self, client: str, response_id: str) -> None:
        """Delete `client`'s response `response_id`; ResponseNotFoundError when it has none.
        Deleting works with storing turned off too: what was stored before can still go."""
        _looked_up(response_id, "id")
        if not await self._store.delete_document(response_name(client, response_id)):
            raise ResponseNotFoundError(response_id, param="id")


async def _read_batches(
    store: StateStore, names: Sequence[str], max_bytes: int
) -> list[bytes | None]:
    """The documents of `names`, read a few at a time; InvalidRequestError as soon as they pass
    `max_bytes` together (a call naming 64 responses of 1 MiB made the router read and send
    64 MiB for a request of a few hundred bytes, uncounted)."""
    found: list[bytes | None] = []
    total = 0
    for start in range(0, len(names), _READ_BATCH):
        batch = await store.get_documents(names[start : start + _READ_BATCH])
        total += sum(len(data) for data in batch if data is not None)
        if total > max_bytes:
            raise InvalidRequestError(
                f"The responses named are larger than {max_bytes} bytes together: refer to "
                "fewer of them (the previous response holds the whole conversation).",
                param="ids",
                code="stored_responses_too_large",
            )
        found += batch
    return found


def _quota_name(client: str) -> str:
    # Hashed like the documents' names: a client's name is configuration, not a key part.
    return "resp-bytes:" + client_scoped(client, "")


def response_name(client: str, response_id: str) -> str:
    return client_document("resp", client, response_id)


def _check_items(items: Sequence[str], field: str) -> None:
    for i, text in enumerate(items):
        checked_object(text, f"response.{field}[{i}]")


def _looked_up(response_id: str, param: str) -> None:
    missing = functools.partial(ResponseNotFoundError, param=param)
    looked_up_id(response_id, param, "response", missing)
