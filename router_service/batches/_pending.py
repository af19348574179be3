"""The count of a client's pending upload parts (OpenAI's Uploads API) against
`files.client_bytes`: one bucket an upload, expiring with it (`Uploads`), read by `StoredFiles`
too, so that a file kept whole sees the room the parts hold."""

from __future__ import annotations

from router_service.sessions import client_scoped
from router_service.state import StateStore

__all__ = ["pending_bytes", "pending_name"]


def pending_name(client: str) -> str:
    """The buckets of `client`'s pending uploads' parts: one bucket an upload, expiring with it
    (a part counts against `files.client_bytes` until its upload ends)."""
    return "upload-bytes:" + client_scoped(client, "")


async def pending_bytes(store: StateStore, client: str) -> int:
    """What `client`'s pending uploads' parts hold now."""
    (buckets,) = await store.read_buckets([pending_name(client)])
    return int(sum(fields.get("bytes", 0.0) for fields in buckets.values()))
