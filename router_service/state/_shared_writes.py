"""Helpers over any StateStore for writes other replicas must see (batches' records)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from router_service.state._base import StateStore

__all__ = ["answered_locally", "document_delete"]


def answered_locally(store: StateStore, before: dict[str, int]) -> bool:
    """Whether a call of `store` was answered from this replica's local state since `before`
    (its `outage_counts`), or it is unreachable now: what it wrote there no other replica reads."""
    now = store.outage_counts()
    return bool(now.get("degraded")) or now.get("fallbacks") != before.get("fallbacks")


def document_delete(name: str) -> Callable[[StateStore], Awaitable[bool]]:
    """The delete of the document `name` on a given store: `StateStore.everywhere`'s write for
    a document nobody writes again (a refused upload's, a refused batch's)."""
    return lambda store: store.delete_document(name)
