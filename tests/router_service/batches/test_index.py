"""A client's index of the files (or batches) it made (memory and Redis side by side): it holds
`max_ids` ids a period, as `files.max_files` says, whatever the ids' length."""

from __future__ import annotations

import secrets

import pytest

from router_service.batches._index import ClientIndex
from router_service.clock import ManualClock
from tests.router_service.state.stores import MakeStore


@pytest.mark.parametrize("prefix", ["file-", "batch_"])
async def test_an_index_takes_max_ids_ids_a_period_and_no_more(
    make_store: MakeStore, prefix: str
) -> None:
    clock = ManualClock()
    index = ClientIndex(make_store(clock), clock, kind="file", period_s=1000, max_ids=5)
    # As the router makes them: a file's 24 hex digits, a batch's 32.
    ids = [prefix + secrets.token_hex(12 if prefix == "file-" else 16) for _ in range(6)]
    added = [await index.add("owner", thing_id) for thing_id in ids]
    assert added == [True] * 5 + [False]
    assert await index.ids("owner") == ids[4::-1]
