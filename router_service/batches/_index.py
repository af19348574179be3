"""ClientIndex: the ids a client made (its files, its batches), for listing them newest first.

The state store has no lists, so each client has one append-only document per period of the
things' lifetime (`period_s`), its ids appended one by one (`StateStore.append_document`: two
replicas adding at once both keep theirs). A thing made in period `k` lives at most `period_s`,
so it is gone before the end of period `k + 1`, when its index document expires: a listing
reads the current period's and the last one's, and drops the ids whose thing is gone (deleted,
expired). Bounded: at most `max_ids` ids a period (exactly: the router makes each kind's ids
of one length, so `max_ids` entries of this one's size are the bound). A thing refused after
its id was added takes it out again (`remove`): a refused one uses up no place.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from google.protobuf.message import DecodeError

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.errors import StoreUnavailableError
from router_service.state import (
    AppendResult,
    MemoryStateStore,
    PutResult,
    StateStore,
    answered_locally,
    index_name,
)

__all__ = ["ClientIndex"]

# Rewrites of an index tried by `remove` while others append to it (its client's other
# uploads racing this one, on any replica) before it gives up and leaves the id counted.
_REMOVE_TRIES = 8
_NOT_SHARED = (
    "The shared state store was lost as this was made: nothing of it was kept; try again shortly."
)


class ClientIndex:
    def __init__(
        self, store: StateStore, clock: Clock, *, kind: str, period_s: float, max_ids: int
    ) -> None:
        self._store = store
        self._clock = clock
        self._kind = kind
        self._period_s = period_s
        self._max_ids = max_ids

    async def add(self, owner: str, thing_id: str, *, late: bool = True) -> bool:
        """Append `thing_id` to `owner`'s index of this period; False when it is full. Its
        call cancelled meanwhile, it takes the id out again: the append may have been made all
        the same (a Redis script runs once sent), and its thing never is. `late`: `remove`'s."""
        try:
            return await self._added(owner, thing_id, late)
        except asyncio.CancelledError:
            with contextlib.suppress(StoreUnavailableError):  # a lone store lost: still counted
                await uncut(self.remove(owner, thing_id, late=late))
            raise

    async def _added(self, owner: str, thing_id: str, late: bool) -> bool:
        bucket = math.floor(self._clock.now() / self._period_s)
        name = self._name(owner, bucket)
        data = bpb.ClientIndex(ids=[thing_id]).SerializeToString()
        # Bounded by bytes (one atomic append): `max_ids` entries the size of this one.
        max_bytes = self._max_ids * len(data)
        for _ in range(2):  # absent: created, unless another replica created it meanwhile
            added = await self._store.append_document(name, data, max_bytes=max_bytes)
            if added is AppendResult.APPENDED:
                return True
            if added is AppendResult.TOO_LARGE:
                return False
            ttl_s = (bucket + 2) * self._period_s - self._clock.now()
            before = self._store.outage_counts()
            kept = await self._store.put_document(name, data, ttl_s, only_new=True)
            if answered_locally(self._store, before):
                # Made on this replica's local state (the shared store lost since it said it
                # had none): every later id of the owner's made here would be appended there,
                # read by no other replica, also once the shared store is back. None made.
                with contextlib.suppress(StoreUnavailableError):  # (not `late`: left there)
                    await self.remove(owner, thing_id, late=late)
                raise StoreUnavailableError(_NOT_SHARED)
            if kept is PutResult.KEPT:
                return True
            if kept is PutResult.TOO_LARGE:
                return False
        return False

    async def remove(self, owner: str, thing_id: str, *, late: bool = True) -> None:
        """Take `thing_id` out of `owner`'s index (this period's, or the last one's should the
        period have ended since `add`): the thing was refused, and takes no place. Where the
        store keeps it: a shared store lost meanwhile is told once it answers again
        (`StateStore.everywhere`), not left counting it until the period ends. Not `late` (a
        known id, which another replica's writer takes up: a removal replayed after it found
        the id listed unlists its thing): now where the store answers (StoreUnavailableError)."""
        if not late:
            await self._remove(self._store, owner, thing_id)
            return
        await self._store.everywhere(
            "index removal", lambda store: self._remove(store, owner, thing_id)
        )

    async def _remove(self, store: StateStore, owner: str, thing_id: str) -> None:
        """`remove` on `store`: a compare-and-swap (`StateStore.replace_document`), so an
        append or another removal racing it is kept, and it tries again."""
        now = self._clock.now()
        bucket = math.floor(now / self._period_s)
        for period in (bucket, bucket - 1):
            name = self._name(owner, period)
            ttl_s = (period + 2) * self._period_s - now  # as long as `add` keeps it
            for _ in range(_REMOVE_TRIES):
                (data,) = await store.get_documents([name])
                ids = [] if data is None else list(_parsed(data).ids)
                if data is None or thing_id not in ids:
                    break
                ids.remove(thing_id)  # ids are unique: the router makes them at random
                # Repeated strings are written entry after entry: the appends' own form. One
                # left empty in memory ends now (one process, one clock: the next `add` makes
                # it again), so that one on a replica's local state no longer takes the
                # appends meant for the shared store. On a shared store it stays to its end:
                # an append that read its clock before this landed (or on a replica whose
                # clock is a little behind) still finds it live, and keeps its expiry.
                left = bpb.ClientIndex(ids=ids).SerializeToString()
                keep_s = 0.0 if not ids and isinstance(store, MemoryStateStore) else ttl_s
                if await store.replace_document(name, left, keep_s, size=len(data), head=data):
                    return

    async def ids(self, owner: str) -> list[str]:
        """`owner`'s ids of this period and the last, newest first."""
        bucket = math.floor(self._clock.now() / self._period_s)
        names = [self._name(owner, bucket), self._name(owner, bucket - 1)]
        found: list[str] = []
        for data in await self._store.get_documents(names):
            if data is not None:
                found += reversed(_parsed(data).ids)
        return list(dict.fromkeys(found))

    def period_left_s(self) -> float:
        """Seconds until this period ends (and a full index takes ids again)."""
        now = self._clock.now()
        return (math.floor(now / self._period_s) + 1) * self._period_s - now

    def _name(self, owner: str, bucket: int) -> str:
        # The memory store drops an index to make room only once nothing else is left: no
        # thing it lists is then kept whole without its entry.
        return index_name(self._kind, owner, bucket)


def _parsed(data: bytes) -> bpb.ClientIndex:
    try:
        return bpb.ClientIndex.FromString(data)
    except DecodeError:  # not ours (a foreign writer under the prefix): as good as empty
        return bpb.ClientIndex()
