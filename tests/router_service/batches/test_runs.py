"""Who runs a batch (memory and Redis side by side): one claim holder at a time, renewed while
it runs; a claim not renewed expires with the heartbeat (the clock moved), and its old holder's
renewal is then refused (it stops); a claim let go is taken at once. The index of running
batches lists those not ended, whoever enlisted them."""

from __future__ import annotations

from router_service.batches import BatchRuns
from router_service.clock import ManualClock
from router_service.config import BatchesConfig
from router_service.server._batch_job import claim_replica
from tests.router_service.state.stores import MakeStore

BATCH = ("client", "batch_1")


async def test_one_replica_holds_a_batch_until_it_lets_go_or_stops_renewing(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    runs = BatchRuns(make_store(clock), BatchesConfig(heartbeat_s=30))
    first = await runs.claim(BATCH, "replica-1")
    assert first is not None
    assert await runs.claim(BATCH, "replica-2") is None
    clock.advance(20)
    assert await runs.renew(BATCH, first)  # good for 30 s more
    clock.advance(20)
    assert await runs.claim(BATCH, "replica-2") is None
    assert await runs.held([BATCH, ("client", "batch_2")]) == [True, False]
    clock.advance(31)  # replica 1 stopped renewing (crashed, or paused)
    assert await runs.holders([BATCH]) == [""]  # its claim expired: nobody holds it
    second = await runs.claim(BATCH, "host-b:7/9f3c")
    assert second is not None
    # Whose it is, for an operator (AdminService.ListJobs): the replica in the owner token.
    (holder,) = await runs.holders([BATCH])
    assert holder == "host-b:7/9f3c" and claim_replica(holder) == "host-b:7"
    assert not await runs.renew(BATCH, first)  # it lost the batch: it stops
    await runs.release(BATCH, first)  # harmless: not its claim any more
    assert await runs.claim(BATCH, "replica-3") is None
    await runs.release(BATCH, second)  # a graceful stop: taken at once
    assert await runs.claim(BATCH, "replica-3") is not None


async def test_the_running_index_lists_the_batches_not_ended(make_store: MakeStore) -> None:
    runs = BatchRuns(make_store(ManualClock()), BatchesConfig())
    await runs.enlist(BATCH)
    await runs.enlist(("", "batch_2"))
    assert sorted(await runs.running()) == [("", "batch_2"), BATCH]
    await runs.delist(BATCH)
    await runs.delist(BATCH)  # twice: harmless
    assert await runs.running() == [("", "batch_2")]
