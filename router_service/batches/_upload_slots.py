"""A client's pending uploads held to `files.max_pending_uploads` (each is two documents kept
for twice `files.upload_ttl_s`: unbounded, a client could fill the state store): a slot an
upload, a lease of the client's (`_resource`) taken in one atomic step of the state store as
it is made (of uploads made at once for the last free slot, one is made), kept as long as the
upload lives (it frees itself as the upload expires), released when it ends. Released twice (a
completion and its retry) or where it was never held, it is nothing; released as Redis is
lost, the release is replayed once it answers (a slot taken during an outage is this replica's
and given back here), never held there for the hour the upload would have lived; an end written
as Redis was lost (its reply lost: whether Redis has it is known once it answers) gives the slot
back there once Redis shows it (`given_back_if_ended`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from router_service.batches._errors import UploadLimitError
from router_service.sessions import client_scoped
from router_service.state import SlotRequest, StateStore

__all__ = ["given_back", "given_back_if_ended", "taken"]


def _resource(client: str) -> str:
    return "upload-slots:" + client_scoped(client, "")


async def taken(store: StateStore, client: str, ttl_s: float, *, most: int, life_s: float) -> str:
    """Take a slot of `client`'s for a pending upload (kept `ttl_s`, its life): its lease, or
    UploadLimitError (`life_s`: its Retry-After) when `most` are pending already."""
    grant = await store.acquire(SlotRequest(_resource(client), ttl_s, max_in_flight=most))
    if grant.lease_id is None:
        raise UploadLimitError(
            f"This client has {most} uploads pending already (files.max_pending_uploads): "
            "complete or cancel one of them, or create this one once one expires.",
            retry_after_s=life_s,
        )
    return grant.lease_id


async def given_back(store: StateStore, client: str, lease_id: str) -> None:
    """Give back an ended (or never kept) upload's slot, its lease `lease_id` ("": none known,
    an upload made before slots were leases)."""
    if lease_id:
        await store.release(_resource(client), lease_id)


def given_back_if_ended(
    end: str, client: str, lease_id: str
) -> Callable[[StateStore], Awaitable[None]]:
    """`StateStore.everywhere`'s write giving back an upload's slot (`given_back`) on a store
    that holds its end, the document `end`: for an end written as the shared store was lost."""

    async def write(store: StateStore) -> None:
        (found,) = await store.get_documents([end])
        if found is not None:
            await given_back(store, client, lease_id)

    return write
