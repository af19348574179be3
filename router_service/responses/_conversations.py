"""Conversations: the router's side of OpenAI's Conversations API (and of `conversation` on a
Responses request, which the edge turns into a load before the chat call and an update after).
The HTTP edge translates; the router keeps (DESIGN.md §1).

Each conversation is one document in the state store (memory, or Redis shared by the replicas),
named by a hash of the calling client's name and the conversation's id (`client_scoped`, as
stored responses are): an unknown, an expired, a deleted and another client's id are one
NOT_FOUND. The document is an append-only record (`ConversationRecord`: its creation, then one
serialized change after another; protobuf reads the concatenation as one record), so that every
change is one atomic `StateStore.append_document`: two replicas adding items at the same moment
both keep theirs, and neither reads what the other is about to replace. A change deleting items
is one compare-and-swap of the record it read instead (`replace_document`), written compacted
(a deleted item's content dropped, its id kept): of two replicas deleting one item, one writes
it; deleting is possible at `max_bytes` and makes room under it.

None of the calls counts in rpm, so each is bounded here: what a client writes per period
(`conversations.client_bytes` per `ttl_s`, ByteQuota: a conversation lives `ttl_s` from its
creation; deleting items is not counted, each item deleted once, so a client holds under three
times that), a conversation's size (`max_bytes`, which its
recorded changes count towards too) and item count (`max_items`: checked against what was read
before the change, so changes racing each other may pass it by one call's items); and a
client's loads read a few at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Sequence

from clients.switchboard.v1 import conversations_pb2 as cpb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._ids import looked_up_id
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.config import ConversationsConfig
from router_service.errors import (
    ConversationItemNotFoundError,
    ConversationNotFoundError,
    ConversationQuotaError,
    ConversationTooLargeError,
    StoreUnavailableError,
)
from router_service.responses._conversation_items import checked_items, checked_metadata
from router_service.responses._stored import ENTRY_BYTES, LOADS_PER_CLIENT
from router_service.sessions import client_document, client_scoped
from router_service.state import (
    KEEP_EXPIRY,
    AppendResult,
    ByteQuota,
    PutResult,
    QuotaReading,
    StateStore,
    kept_message,
)

__all__ = ["Conversations"]

# Compare-and-swaps a delete tries while other changes land on its conversation meanwhile.
_REWRITE_TRIES = 8
_BUSY = "Conversation {} changed under this delete too often: try again shortly."


class Conversations:
    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        config: ConversationsConfig,
        *,
        max_load_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        # A conversation is read back whole (LoadConversation) and sent on as a chat call's
        # history beside the request's own input: half the router's message bound at most.
        self._max_bytes = min(config.max_bytes, max_load_bytes // 2)
        # As for stored responses: a client's loads run a few at a time (names are configured:
        # the map is bounded).
        self._loading: dict[str, asyncio.Semaphore] = {}
        # A client's deletes, read and written one at a time (here): deleting is not counted
        # at the quota, so two reading an item live at once must not both write it again.
        self._deleting = _PerClient()
        self._quota = ByteQuota(
            store, clock, limit_bytes=config.client_bytes, period_s=config.ttl_s
        )

    def quota_reading(self, clients: Sequence[str]) -> QuotaReading:
        """What reading the conversation-bytes quota of `clients` takes (their current period,
        now), for an operator (AdminService.ListClients); `""`: open mode's callers."""
        return self._quota.reading([_quota_name(client) for client in clients])

    async def create(
        self, client: str, request: pb.CreateConversationRequest
    ) -> pb.CreateConversationResponse:
        """A new conversation of `client`, with `request`'s metadata and items."""
        conversation = cpb.Conversation(
            id=f"conv_{secrets.token_hex(24)}",
            created_at=int(self._clock.now()),
            metadata_json=checked_metadata(request.metadata_json),
        )
        items = checked_items(request.items_json, ())
        self._check_count(0, len(items))
        data = cpb.ConversationRecord(conversation=conversation, items=items).SerializeToString()
        self._check_size(len(data))
        size = len(data) + ENTRY_BYTES
        bucket = await self._room(client, size)
        name = _name(client, conversation.id)
        kept = await self._store.put_document(name, data, self._config.ttl_s, only_new=True)
        if kept is not PutResult.KEPT:  # TOO_LARGE: the memory store's room (EXISTS: 192 bits)
            raise ConversationTooLargeError(
                "The router has no room to keep this conversation now.", code="no_room"
            )
        await uncut(self._quota.charge(_quota_name(client), bucket, size))
        return pb.CreateConversationResponse(conversation=conversation, items=items)

    async def load(
        self, client: str, conversation_id: str, *, with_item_ids: bool = False
    ) -> pb.LoadConversationResponse:
        """`client`'s conversation `conversation_id` and its items, oldest first (and the ids
        of all it was given, deleted ones too, `with_item_ids`: where a listing's cursor stood)."""
        record = await self._record(client, _looked_up(conversation_id))
        loaded = pb.LoadConversationResponse(
            conversation=record.conversation, items=_live_items(record)
        )
        if with_item_ids:
            loaded.item_ids.extend(item.id for item in record.items)
        return loaded

    async def check(self, client: str, conversation_id: str, *, param: str) -> None:
        """ConversationNotFoundError naming `param` unless `client` has the conversation now
        (one read): for a call that spends tokens before it writes to the conversation."""
        await self._record(client, _looked_up(conversation_id, param), param=param)

    async def update(
        self, client: str, request: pb.UpdateConversationRequest
    ) -> pb.UpdateConversationResponse:
        """Apply `request`'s change (metadata, items added, items deleted) in one append."""
        if not request.delete_item_ids:
            return await self._updated(client, request)
        async with self._deleting.turn(client):
            return await self._updated(client, request)

    async def _updated(
        self, client: str, request: pb.UpdateConversationRequest
    ) -> pb.UpdateConversationResponse:
        for _ in range(_REWRITE_TRIES):
            data, record = await self._read(client, _looked_up(request.id))
            change = self._change(record, request)
            written = change.SerializeToString()
            # Deleting frees room: its ids are neither counted nor refused at the quota (the
            # record's fields concatenate, so the rest is what the change adds).
            deleted = cpb.ConversationRecord(deleted_item_ids=change.deleted_item_ids)
            counted = len(written) - deleted.ByteSize()
            if not change.deleted_item_ids:
                if written:
                    await self._append(client, request.id, written, counted)
            elif not await self._rewritten(client, record, data, written, counted):
                continue  # changed since it was read (another replica): read again
            record.MergeFrom(change)  # the conversation as the change left it
            return pb.UpdateConversationResponse(
                conversation=record.conversation, added_items=change.items
            )
        raise StoreUnavailableError(_BUSY.format(request.id))

    async def _rewritten(
        self, client: str, record: cpb.ConversationRecord, data: bytes, change: bytes, counted: int
    ) -> bool:
        """Write a change deleting items as one compare-and-swap of the record read (`data`,
        `StateStore.replace_document`); False when it changed meanwhile. Of two replicas
        deleting one item at once one writes it (the other reads it deleted: 404). The record
        is written compacted (`_compacted`): what deleted items said is dropped, so deleting
        makes room under `max_bytes` and a full conversation emptied takes items again; a
        change only deleting is never refused for size (it never grows the record)."""
        written = _compacted(record, change)
        if counted:
            self._check_size(len(written))
        bucket = await self._room(client, counted) if counted else None
        # Its life as `create` gave it, to the instant: not renewed by a change, nor ended
        # early (recomputed from `created_at`, whole seconds, it ended up to 1 s before).
        name = _name(client, record.conversation.id)
        replaced = await self._store.replace_document(
            name, written, KEEP_EXPIRY, size=len(data), head=data
        )
        if replaced and bucket is not None:
            await uncut(self._quota.charge(_quota_name(client), bucket, counted))
        return replaced

    async def delete(self, client: str, conversation_id: str) -> None:
        """Delete `client`'s conversation; ConversationNotFoundError when it has none."""
        _looked_up(conversation_id)
        if not await self._store.delete_document(_name(client, conversation_id)):
            raise ConversationNotFoundError(conversation_id, param="id")

    def _change(
        self, record: cpb.ConversationRecord, request: pb.UpdateConversationRequest
    ) -> cpb.ConversationRecord:
        """The record of `request`'s change to `record`, checked against it."""
        live = {item.id for item in _live_items(record)}
        for i, item_id in enumerate(request.delete_item_ids):
            param = f"delete_item_ids[{i}]"
            missing = functools.partial(ConversationItemNotFoundError, param=param)
            if looked_up_id(item_id, param, "item", missing) not in live:
                raise ConversationItemNotFoundError(item_id, param=param)
        taken = [item.id for item in record.items]
        items = checked_items(request.add_items_json, taken)
        # Each id kept once: deleting is not counted at the quota, so an id named again must
        # not be written again (one call would fill `max_bytes` with it, quota-free).
        deleted = list(dict.fromkeys(request.delete_item_ids))
        self._check_count(len(live) - len(deleted), len(items))
        change = cpb.ConversationRecord(items=items, deleted_item_ids=deleted)
        if request.HasField("metadata_json"):
            change.conversation.metadata_json = checked_metadata(request.metadata_json)
        return change

    async def _append(self, client: str, conversation_id: str, data: bytes, counted: int) -> None:
        """Append `data` to the conversation, `counted` of its bytes against the quota."""
        bucket = await self._room(client, counted) if counted else None
        name = _name(client, conversation_id)
        done = await self._store.append_document(name, data, max_bytes=self._max_bytes)
        if done is AppendResult.MISSING:  # deleted (or expired) since it was read
            raise ConversationNotFoundError(conversation_id, param="id")
        if done is AppendResult.TOO_LARGE:
            self._check_size(self._max_bytes + 1)
        if bucket is not None:
            await uncut(self._quota.charge(_quota_name(client), bucket, counted))

    async def _record(
        self, client: str, conversation_id: str, *, param: str = "id"
    ) -> cpb.ConversationRecord:
        return (await self._read(client, conversation_id, param=param))[1]

    async def _read(
        self, client: str, conversation_id: str, *, param: str = "id"
    ) -> tuple[bytes, cpb.ConversationRecord]:
        """The conversation's record as stored, and as read."""
        loading = self._loading.setdefault(client, asyncio.Semaphore(LOADS_PER_CLIENT))
        async with loading:
            (data,) = await self._store.get_documents([_name(client, conversation_id)])
        record = kept_message(cpb.ConversationRecord, data)
        # The id inside guards against a (128-bit) hash collision with another's name.
        if data is None or record is None or record.conversation.id != conversation_id:
            raise ConversationNotFoundError(conversation_id, param=param)
        return data, record

    async def _room(self, client: str, size: int) -> int:
        """The quota period `size` more bytes of `client` count in, else ConversationQuotaError
        (until the period ends: RetryInfo)."""
        name = _quota_name(client)
        bucket = await self._quota.room(name, size)
        if bucket is None:
            resets = self._quota.reading([name]).resets_unix
            raise ConversationQuotaError(
                f"This client wrote its {self._config.client_bytes} bytes of conversations for "
                "this period (conversations.client_bytes): conversations cannot be started or "
                "changed until it ends.",
                retry_after_s=max(0.0, resets - self._clock.now()),
            )
        return bucket

    def _check_size(self, size: int) -> None:
        if size > self._max_bytes:
            raise ConversationTooLargeError(
                f"The conversation would be larger than {self._max_bytes} bytes "
                "(conversations.max_bytes): start a new conversation.",
                code="conversation_too_large",
            )

    def _check_count(self, held: int, added: int) -> None:
        if held + added > self._config.max_items:
            raise ConversationTooLargeError(
                f"The conversation would hold more than {self._config.max_items} items "
                "(conversations.max_items): start a new conversation.",
                param="items",
                code="conversation_too_large",
            )


def _looked_up(conversation_id: str, param: str = "id") -> str:
    """A conversation id to look up (`looked_up_id`), refusals naming `param`."""
    missing = functools.partial(ConversationNotFoundError, param=param)
    return looked_up_id(conversation_id, param, "conversation", missing)


def _compacted(record: cpb.ConversationRecord, change: bytes) -> bytes:
    """`record` as `change` (serialized) leaves it, each deleted item's `item_json` dropped:
    its id is kept (where a listing's cursor stood; an id is never taken again)."""
    changed = cpb.ConversationRecord()
    changed.CopyFrom(record)
    changed.MergeFromString(change)
    gone = set(changed.deleted_item_ids)
    for item in changed.items:
        if item.id in gone:
            item.ClearField("item_json")
    return changed.SerializeToString()


def _live_items(record: cpb.ConversationRecord) -> list[cpb.ConversationItem]:
    deleted = set(record.deleted_item_ids)
    return [item for item in record.items if item.id not in deleted]


def _quota_name(client: str) -> str:
    # Hashed like the documents' names: a client's name is configuration, not a key part.
    return "conv-bytes:" + client_scoped(client, "")


def _name(client: str, conversation_id: str) -> str:
    return client_document("conv", client, conversation_id)


class _PerClient:
    """One client's calls one at a time; a client's lock is kept only while a call holds or
    waits for it (every client that ever deleted would otherwise keep one)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(client, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[client] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[client]
            if users == 1:
                del self._locks[client]
            else:
                self._locks[client] = (lock, users - 1)
