"""A page of a client's files (`StoredFiles.listed`): their ids in order from the client's
index, their objects read a chunk at a time until the page (and one more file, for
`has_more`) is found, not every file the client keeps (up to `files.max_files` a period)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from clients.switchboard.v1 import batches_pb2 as bpb

__all__ = ["page_of"]

# The most objects read in one round trip to the store.
_CHUNK = 1000


async def page_of(
    ids: list[str],
    read: Callable[[list[str]], Awaitable[list[bpb.StoredFile | None]]],
    *,
    limit: int,
    purpose: str,
) -> tuple[list[bpb.StoredFile], bool]:
    """The first `limit` files of `ids` (in their order) that stand (`read`: None for one gone,
    deleted or expired) and are of `purpose` ("": any), and whether more follow."""
    found: list[bpb.StoredFile] = []
    step = min(limit + 1, _CHUNK)
    for start in range(0, len(ids), step):
        files = await read(ids[start : start + step])
        found += [f for f in files if f is not None and (not purpose or f.purpose == purpose)]
        if len(found) > limit:
            break
    return found[:limit], len(found) > limit
