"""A completed upload's file charged against `files.client_bytes` once, whoever charges it: the
completion that ended it, or a retried completion that found it completed (the first's reply
from Redis lost after Redis wrote its end: it fell back to local state, a 503, and charged
nothing). A write-once marker (`UploadNames.charged`) says it was charged."""

from __future__ import annotations

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches._files import StoredFiles
from router_service.batches._upload_names import UploadNames
from router_service.state import PutResult, StateStore

__all__ = ["charged_once"]


async def charged_once(
    store: StateStore,
    files: StoredFiles,
    client: str,
    upload_id: str,
    file: bpb.StoredFile,
    ttl_s: float,
) -> bool:
    """Charge `client`'s `file`, completed from upload `upload_id`, unless it was charged
    already: whether this call charged it. The marker is kept `ttl_s` (as long as the file
    and the upload's end are), so no later completion of the upload charges it again."""
    name = UploadNames(client, upload_id).charged
    # No room to keep the marker (the memory store's): charged all the same, a file never
    # left outside its client's quota.
    if await store.put_document(name, b"1", ttl_s, only_new=True) is PutResult.EXISTS:
        return False
    await files.charge(client, file)
    return True
