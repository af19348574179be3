"""Helpers of the response cache tests."""

from __future__ import annotations

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cache._cache import ENTRY_BYTES
from router_service.cache._keys import cache_key, document_name
from tests.conftest import RouterHandle


async def entry_bytes(router: RouterHandle, request: pb.ChatRequest) -> int:
    """What one kept answer counts against its client's quota (open mode: client "")."""
    generation = await router.runtime.cache.generation(request.params.model)
    name = document_name("", cache_key("chat", "", request.params, generation))
    (data,) = await router.runtime.store.get_documents([name])
    assert data is not None
    return len(data) + ENTRY_BYTES
