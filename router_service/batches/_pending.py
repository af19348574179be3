"""The count of a client's pending upload parts (OpenAI's Uploads API) against
`files.client_bytes`: one bucket an upload, expiring with it (`Uploads`), read by `StoredFiles`
too, so that a file kept whole sees the room the parts hold."""

from __future__ import annotations

from router_service.sessions import client_scoped
from router_service.state import StateStore

__all__ = ["held_of", "pending_bytes", "pending_name"]


def pending_name(client: str) -> str:
    """The buckets of `client`'s pending uploads' parts: one bucket an upload, expiring with it
    (a part counts against `files.client_bytes` until its upload ends)."""
    return "upload-bytes:" + client_scoped(client, "")


async def pending_bytes(store: StateStore, client: str) -> int:
    """What `client`'s pending uploads' parts hold now (each upload's `held_of` its bucket)."""
    (buckets,) = await store.read_buckets([pending_name(client)])
    return sum(held_of(fields) for fields in buckets.values())


def held_of(fields: dict[str, float]) -> int:
    """What one upload's bucket holds: never less than nothing. An ended upload's count may be
    given back twice (a completion and a cancel racing, each read it before either gave it
    back, as may a part refused as its upload ended): that is no room for the client's other
    files, the bucket expiring with the upload."""
    return max(int(fields.get("bytes", 0.0)), 0)
