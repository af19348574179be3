"""A client's pending uploads held to `files.max_pending_uploads` (each is two documents kept
for twice `files.upload_ttl_s`: unbounded, a client could fill the state store): a slot an
upload, counted in a bucket of the client's (`_name`) that expires with the upload. Taken as
it is made (counted first, then the total read: of uploads made at once past the bound, each
sees the others), given back when it ends; given back twice (a completion and its retry, two
racing cancels) it is one slot still, each bucket's count never below nothing."""

from __future__ import annotations

from router_service.batches._errors import UploadLimitError
from router_service.batches._upload_names import upload_bucket
from router_service.sessions import client_scoped
from router_service.state import StateStore

__all__ = ["given_back", "taken"]

_FIELD = "uploads"


def _name(client: str) -> str:
    return "upload-slots:" + client_scoped(client, "")


async def taken(
    store: StateStore, client: str, upload_id: str, ttl_s: float, *, most: int, life_s: float
) -> None:
    """Take a slot of `client`'s for pending upload `upload_id` (kept `ttl_s`, its life), or
    refuse it (UploadLimitError) when `most` are pending already, nothing held then."""
    await _added(store, client, upload_id, 1.0, ttl_s)
    try:
        (buckets,) = await store.read_buckets([_name(client)])
        pending = sum(max(int(fields.get(_FIELD, 0.0)), 0) for fields in buckets.values())
        if pending > most:
            raise UploadLimitError(
                f"This client has {most} uploads pending already (files.max_pending_uploads): "
                "complete or cancel one of them, or create this one once one expires.",
                retry_after_s=life_s,
            )
    except BaseException:
        await _added(store, client, upload_id, -1.0, ttl_s)
        raise


async def given_back(store: StateStore, client: str, upload_id: str, ttl_s: float) -> None:
    """Give back ended upload `upload_id`'s slot (`ttl_s`: what was left of its life)."""
    if ttl_s > 0:
        await _added(store, client, upload_id, -1.0, ttl_s)


async def _added(
    store: StateStore, client: str, upload_id: str, count: float, ttl_s: float
) -> None:
    await store.add_to_bucket(_name(client), upload_bucket(upload_id), {_FIELD: count}, ttl_s)
