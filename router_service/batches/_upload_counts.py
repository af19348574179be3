"""The count of an upload's parts against its client's `files.client_bytes` (`Uploads`): one
bucket an upload among its client's pending uploads (`pending_name`), expiring with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from clients.switchboard.v1 import uploads_pb2 as upb
from router_service.batches._pending import held_of, pending_name
from router_service.batches._records import answered_locally
from router_service.batches._upload_names import UploadNames
from router_service.batches._upload_names import upload_bucket as _bucket
from router_service.clock import Clock
from router_service.state import StateStore

__all__ = ["PartCounts"]


class PartCounts:
    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def held(self, client: str, upload_id: str) -> int:
        """What `upload_id`'s parts count against its client's quota now."""
        (buckets,) = await self._store.read_buckets([pending_name(client)])
        return held_of(buckets.get(_bucket(upload_id), {}))

    async def count(self, client: str, upload: upb.Upload, size: int) -> None:
        """Count `size` more bytes of `upload`'s parts (less, negative), until it expires."""
        ttl_s = upload.expires_at - self._clock.now()
        if size and ttl_s > 0:
            counts = {"bytes": float(size)}
            await self._store.add_to_bucket(pending_name(client), _bucket(upload.id), counts, ttl_s)

    async def recounted(
        self,
        client: str,
        upload: upb.Upload,
        size: int,
        before: dict[str, int],
        *,
        pending: bool = False,
    ) -> None:
        """Count `size` bytes of `upload`'s parts again, given back by a completion that failed
        (begun at `before`, the store's `outage_counts`; negative: a cancel's give-back). Redis
        lost meanwhile: on the shared store too, once it answers (not room no part paid for,
        nor room an ended upload's parts hold there for its hour); `pending` (a completion's):
        only where the upload has no end (Redis wrote the end, its reply lost: its parts live
        on in its file, charged as it is)."""
        ttl_s = upload.expires_at - self._clock.now()
        if not answered_locally(self._store, before):
            await self.count(client, upload, size)
        elif size and ttl_s > 0:
            end = UploadNames(client, upload.id).end if pending else None
            added = _added(client, upload, size, self._clock, unless=end)
            await self._store.everywhere("add_to_bucket", added)


def _added(
    client: str, upload: upb.Upload, size: int, clock: Clock, *, unless: str | None
) -> Callable[[StateStore], Awaitable[None]]:
    """`StateStore.everywhere`'s write counting `size` bytes of `upload`'s parts, on a store
    that holds no document `unless` (None: on any), until the upload expires: replayed late (an
    outage's end), it still ends with the upload, not the time left when it was queued later."""
    name, bucket, counts = pending_name(client), _bucket(upload.id), {"bytes": float(size)}
    expires_at = upload.expires_at

    async def write(store: StateStore) -> None:
        if (ttl_s := expires_at - clock.now()) <= 0:
            return
        if unless is not None and (await store.get_documents([unless]))[0] is not None:
            return
        await store.add_to_bucket(name, bucket, counts, ttl_s)

    return write
