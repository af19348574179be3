"""`StateStore.delete_documents`: many documents deleted in one call (few round trips), on
every backend."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import PutResult
from tests.router_service.state.stores import MakeStore


async def test_many_documents_are_deleted_in_one_call(make_store: MakeStore) -> None:
    """An upload's parts (up to 10,000) deleted at once: every one named, none other, those
    already gone or never kept included."""
    store = make_store(ManualClock())
    names = [f"upload-part:c:u.part_{n:05d}" for n in range(2500)]
    for name in [*names, "upload-part:c:other"]:
        assert await store.put_document(name, b"x", 60) is PutResult.KEPT
    await store.delete_documents([*names, "never-kept"])
    assert await store.get_documents([*names, "upload-part:c:other"]) == [None] * 2500 + [b"x"]
    await store.delete_documents([])
