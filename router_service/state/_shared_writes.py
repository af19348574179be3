"""Helpers over any StateStore for writes other replicas must see (batches' records)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from router_service.state._base import StateStore

__all__ = ["answered_locally", "document_delete", "documents_delete"]


def answered_locally(store: StateStore, before: dict[str, int]) -> bool:
    """Whether a call of `store` was answered from this replica's local state since `before`
    (its `outage_counts`), or it is unreachable now: what it wrote there no other replica reads."""
    now = store.outage_counts()
    return bool(now.get("degraded")) or now.get("fallbacks") != before.get("fallbacks")


def document_delete(name: str) -> Callable[[StateStore], Awaitable[bool]]:
    """The delete of the document `name` on a given store: `StateStore.everywhere`'s write for
    a document nobody writes again (a refused upload's, a refused batch's)."""
    return lambda store: store.delete_document(name)


def documents_delete(names: Sequence[str]) -> Callable[[StateStore], Awaitable[None]]:
    """`document_delete` of many documents at once (an upload's parts): one write, one call of
    the store (few round trips), one queued write in an outage (not one per name, which filled
    the bounded journal and dropped the other writes queued)."""
    return lambda store: store.delete_documents(names)
