"""A completed upload's file charged against `files.client_bytes` once, whoever charges it: the
completion that ended it, a retried completion that found it completed, or, the completion's
reply from Redis lost after Redis wrote its end (it fell back to local state, a 503, and
charged nothing), that completion's replica once Redis answers it again
(`charged_if_completed`): a file the client never asks about again is charged all the same,
not kept uncharged for `files.ttl_s`. A write-once marker (`UploadNames.charged`) says it was
charged. A file its client deleted before any of them charged it is charged by none (it holds
nothing now): it stays deleted, its upload completed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from clients.switchboard.v1 import uploads_pb2 as upb
from router_service.batches._file_names import file_names, kept_file
from router_service.batches._files import StoredFiles
from router_service.batches._upload_names import UploadNames
from router_service.state import PutResult, StateStore, kept_message

__all__ = ["charged_if_completed", "charged_once"]


async def charged_once(
    store: StateStore, files: StoredFiles, client: str, ended: upb.Upload, ttl_s: float
) -> bool:
    """Charge `client`'s upload `ended`'s file on `store`, unless it was charged already or
    deleted since: whether this call charged it. The marker is kept `ttl_s` (as long as the
    file and the upload's end are), so no later completion of the upload charges it again."""
    name = UploadNames(client, ended.id).charged
    # No room to keep the marker (the memory store's): charged all the same, a file never
    # left outside its client's quota.
    if await store.put_document(name, b"1", ttl_s, only_new=True) is PutResult.EXISTS:
        return False
    (dead,) = await store.get_documents([file_names(client, ended.file.id).deleted])
    if kept_file(ended.file.id, dead) is not None:
        return False
    await files.charge(client, ended.file, store)
    return True


def charged_if_completed(
    files: StoredFiles, client: str, upload_id: str, ttl_s: float
) -> Callable[[StateStore], Awaitable[None]]:
    """`StateStore.everywhere`'s write charging upload `upload_id`'s file once
    (`charged_once`) on a store that holds its end, completed: for an end written as the
    shared store was lost (its reply lost: whether Redis has it is known once it answers)."""

    async def write(store: StateStore) -> None:
        (found,) = await store.get_documents([UploadNames(client, upload_id).end])
        ended = kept_message(upb.Upload, found)
        if ended is not None and ended.id == upload_id and ended.status == "completed":
            await charged_once(store, files, client, ended, ttl_s)

    return write
