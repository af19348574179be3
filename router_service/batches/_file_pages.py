"""A page of a client's files (`StoredFiles.listed`) or batches (`BatchRecords.listed`): their
ids in order from the client's index, their objects read a chunk at a time until the page (and
one more, for `has_more`) is found, not every one the client keeps (up to `files.max_files` a
period). A chunk twice the last one (up to `_CHUNK`): a small page past many it skips
(deleted, expired, of another purpose) takes a few round trips, not one for every `limit + 1`
of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["page_of"]

# The most objects read in one round trip to the store.
_CHUNK = 1000

T = TypeVar("T")


async def page_of(
    ids: list[str],
    read: Callable[[list[str]], Awaitable[Sequence[T | None]]],
    *,
    limit: int,
    wanted: Callable[[T], bool] = lambda _: True,
) -> tuple[list[T], bool]:
    """The first `limit` things of `ids` (in their order) that stand (`read`: None for one
    gone, deleted or expired) and are `wanted`, and whether more follow."""
    found: list[T] = []
    start, step = 0, min(limit + 1, _CHUNK)
    while start < len(ids) and len(found) <= limit:
        found += [t for t in await read(ids[start : start + step]) if t is not None and wanted(t)]
        start, step = start + step, min(step * 2, _CHUNK)
    return found[:limit], len(found) > limit
