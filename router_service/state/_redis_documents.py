"""Documents on Redis (`{prefix}:doc:{name}`, a string "expiry|" + bytes): RedisStateStore's
document calls, apart so that the store's module stays one screenful per kind.

Documents (large, read a few times at most) are read with a plain MGET, not the read cache. The
expiry is written beside the data (the replicas' clock decides, as for values) and Redis's own
TTL, a little later, removes the key.
"""

from __future__ import annotations

from collections.abc import Sequence

from router_service.clock import Clock
from router_service.state import _redis_scripts as lua
from router_service.state._base import FOREVER, AppendResult, DocumentPart, PutResult
from router_service.state._documents import KEEP_EXPIRY
from router_service.state._redis_entries import live_documents, translated, ttl_px
from router_service.state._resp import RespClient
from router_service.state._resp_wire import raw

__all__ = ["RedisDocuments"]

_UNLINK_KEYS = 1000  # keys an UNLINK: one command of 10,000 parts' names holds Redis ~ms
_APPENDED = {1: AppendResult.APPENDED, 0: AppendResult.MISSING, -1: AppendResult.TOO_LARGE}


class RedisDocuments:
    """The document half of RedisStateStore (a mixin: it shares the store's client)."""

    _client: RespClient
    _clock: Clock

    def _key(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def _init_documents(self, client: RespClient) -> None:
        self._put_new_document = client.script(lua.PUT_NEW_DOCUMENT)
        self._append_document = client.script(lua.APPEND_DOCUMENT)
        self._read_document = client.script(lua.READ_DOCUMENT)
        self._replace_document = client.script(lua.REPLACE_DOCUMENT)

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        # A script for `only_new`, not SET NX: a document expired by the replicas' clock is
        # still a key for a while, and may be rewritten.
        now = self._clock.now()
        entry = f"{now + ttl_s!r}|".encode() + data
        key = self._key("doc", name)
        # FOREVER: no TTL at all, so that no eviction policy but `allkeys-*` can take it.
        px: list[str | int | bytes] = [] if ttl_s == FOREVER else ["PX", ttl_px(ttl_s)]
        with translated():
            if not only_new:
                await self._client.execute("SET", key, entry, *px)
            elif not await self._put_new_document([key], [entry, px[-1] if px else "", repr(now)]):
                return PutResult.EXISTS
        return PutResult.KEPT

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        # One script (APPEND keeps the key's TTL): appends from any replica queue on the server,
        # none reads what another is about to replace.
        args: list[str | int | bytes] = [data, repr(self._clock.now()), max_bytes]
        with translated():
            done = await self._append_document([self._key("doc", name)], args)
        return _APPENDED[int(done)]

    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        now = self._clock.now()
        expiry, px = repr(now + ttl_s), "" if ttl_s == FOREVER else str(ttl_px(ttl_s))
        if ttl_s == KEEP_EXPIRY:  # the script keeps the document's expiry and its TTL
            expiry, px = "", "keep"
        args: list[str | int | bytes] = [data, repr(now), size, head, expiry, px]
        with translated():
            return bool(await self._replace_document([self._key("doc", name)], args))

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        if not names:
            return []
        with translated():
            stored = await self._client.execute("MGET", *[self._key("doc", n) for n in names])
        return live_documents(stored, self._clock.now())

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        # One script: the expiry and the size are read with the part, in one step (GETRANGE
        # alone cannot tell where the "expiry|" header ends).
        args: list[str | int | bytes] = [repr(self._clock.now()), start, max_bytes]
        with translated():
            found = await self._read_document([self._key("doc", name)], args)
        if found is None:
            return None
        data, size = found
        return DocumentPart(raw(data), int(size))

    async def delete_documents(self, names: Sequence[str]) -> None:
        # UNLINK: many keys a command (freed off Redis's main thread), not a round trip each.
        for at in range(0, len(names), _UNLINK_KEYS):
            keys = [self._key("doc", name) for name in names[at : at + _UNLINK_KEYS]]
            with translated():
                await self._client.execute("UNLINK", *keys)

    async def delete_document(self, name: str) -> bool:
        # GETDEL: whether it was still live (by the replicas' clock, not Redis's later TTL).
        with translated():
            stored = await self._client.execute("GETDEL", self._key("doc", name))
        return live_documents([stored], self._clock.now())[0] is not None
