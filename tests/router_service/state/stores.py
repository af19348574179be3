"""Stores of each kind side by side: the `make_store` fixture (memory, Redis) that the contract
tests run against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from router_service.clock import ManualClock
from router_service.state import MemoryStateStore, RedisStateStore, StateStore

__all__ = ["MakeStore", "make_store"]

MakeStore = Callable[[ManualClock], StateStore]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """A factory of empty stores of one kind on a given clock; all closed afterwards."""
    stores: list[StateStore] = []

    def make(clock: ManualClock) -> StateStore:
        store: StateStore
        if request.param == "memory":
            store = MemoryStateStore(clock)
        else:
            url = request.getfixturevalue("redis_url")
            prefix = request.getfixturevalue("redis_prefix")
            store = RedisStateStore.from_url(url, prefix=prefix, clock=clock)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()
