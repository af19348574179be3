"""What only the in-memory store promises: its maps stay bounded (the behaviour it shares with
the Redis store is in test_contract.py)."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.state import MemoryStateStore, SlotRequest


async def test_nothing_accumulates() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    for i in range(10_000):
        lease = (await store.acquire(SlotRequest(f"r{i}", 10, rpm=100))).lease_id
        assert lease is not None
        await store.release(f"r{i}", lease)
        await store.extend_deadline(f"d{i}", clock.now() + 1)
        clock.advance(0.1)
    leases, rates, deadlines = store.sizes()
    assert leases == 0
    assert rates < 4096 + 200
    assert deadlines < 4096 + 200
