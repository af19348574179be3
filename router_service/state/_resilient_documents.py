"""ResilientStateStore's documents (stored Responses): to the shared store; during an outage to
the local one, not replayed (see `_resilient.py`'s docstring)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from router_service.state._base import (
    FOREVER,
    AppendResult,
    DocumentPart,
    PutResult,
    StateStore,
    StoreUnavailableError,
)
from router_service.state._journal import Write
from router_service.state._memory import MemoryStateStore

T = TypeVar("T")

# A refused document change, said without the store's address: the caller reads it.
_UNCHANGEABLE = (
    "The shared state store is unreachable: this document cannot be changed now; try again shortly."
)


class _Down:
    """The shared store did not answer: use local state."""


_DOWN: Final = _Down()


class ResilientDocuments:
    """The document calls of a store with a shared and a local side (ResilientStateStore)."""

    shared: StateStore
    local: MemoryStateStore

    async def _try_shared(
        self, op: Callable[[], Awaitable[T]], undo: Callable[[T], Write | None] | None = None
    ) -> T | _Down:
        raise NotImplementedError  # ResilientStateStore's

    async def _write(self, kind: str, op: Callable[[], Awaitable[object]]) -> None:
        raise NotImplementedError  # ResilientStateStore's

    # -- documents -----------------------------------------------------------------------------
    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        # One kept here during an outage is read from here while the shared store lacks it
        # (`get_documents`): it holds its name too, also once the shared store is back.
        if only_new and (await self.local.get_documents([name]))[0] is not None:
            return PutResult.EXISTS
        kept = await self._try_shared(
            lambda: self.shared.put_document(name, data, ttl_s, only_new=only_new)
        )
        if isinstance(kept, _Down):
            if ttl_s == FOREVER:  # a shared log (issued keys'): no replica reads one begun here
                raise StoreUnavailableError(_UNCHANGEABLE)
            # Only this replica's own documents are known now: one stored on the shared store
            # before the outage can be stored again here, but it is the shared one that every
            # replica, this one included, reads once the store is back; it is never replaced.
            return await self.local.put_document(name, data, ttl_s, only_new=only_new)
        return kept

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        # One stored here during an outage stays here (the shared store never hears of it).
        if (await self.local.get_documents([name]))[0] is not None:
            return await self.local.append_document(name, data, max_bytes=max_bytes)
        done = await self._try_shared(
            lambda: self.shared.append_document(name, data, max_bytes=max_bytes)
        )
        if isinstance(done, _Down):
            raise StoreUnavailableError(_UNCHANGEABLE)
        return done

    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        # As `append_document`: where the document is; never on a guess while the store is down.
        if (await self.local.get_documents([name]))[0] is not None:
            return await self.local.replace_document(name, data, ttl_s, size=size, head=head)
        done = await self._try_shared(
            lambda: self.shared.replace_document(name, data, ttl_s, size=size, head=head)
        )
        if isinstance(done, _Down):
            raise StoreUnavailableError(_UNCHANGEABLE)
        return done

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        found = await self._try_shared(lambda: self.shared.get_documents(names))
        local = await self.local.get_documents(names)
        if isinstance(found, _Down):
            return local
        return [doc if doc is not None else mine for doc, mine in zip(found, local, strict=True)]

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        # As `get_documents`: the shared store's, else one kept here during an outage.
        found = await self._try_shared(lambda: self.shared.read_document(name, start, max_bytes))
        if isinstance(found, DocumentPart):
            return found
        return await self.local.read_document(name, start, max_bytes)

    async def delete_documents(self, names: Sequence[str]) -> None:
        # From both, as `delete_document`; an outage unknown to the caller is its 503.
        shared = await self._try_shared(lambda: self.shared.delete_documents(names))
        await self.local.delete_documents(names)
        if isinstance(shared, _Down):
            raise StoreUnavailableError(_UNCHANGEABLE)

    async def delete_document(self, name: str) -> bool:
        # From both: one stored during an outage lives in the local store.
        shared = await self._try_shared(lambda: self.shared.delete_document(name))
        local = await self.local.delete_document(name)
        if isinstance(shared, _Down) and not local:
            # Whether the shared store holds it is unknown: not "none", an outage (a 404 would
            # be wrong, and the document still there once the store is back).
            raise StoreUnavailableError(_UNCHANGEABLE)
        return local or shared is True
