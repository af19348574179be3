"""KeyPool's arrival queue: who waits behind whom for a key slot."""

from __future__ import annotations

import asyncio

from router_service.keys import KeyLease, Refusal, Unavailable
from router_service.outcomes import Outcome
from tests.router_service.keys.test_pool import make_pool, take


async def test_a_model_waiting_for_a_slot_does_not_hold_up_another_models_free_key() -> None:
    pool, _ = make_pool("k1", "k2", max_in_flight=1)
    k1, k2 = pool.keys
    await pool.report(k1, "x", Outcome.RATE_LIMITED, 60.0)  # k1 cools for model x only
    holder = await take(pool, "x")  # x's one usable key, k2, is busy
    assert holder.key is k2
    # A request for x waits for k2 ...
    waiting = asyncio.create_task(pool.lease_or_wait("x", wait_s=30.0))
    await asyncio.sleep(0)
    assert await pool.lease("x") == Unavailable(Refusal.AT_LIMIT)
    # ... while k1 is free for model y: y's requests take it, nobody waits for it.
    other = await pool.lease_or_wait("y", wait_s=0.0)
    assert isinstance(other, KeyLease) and other.key is k1
    await other.release()
    await holder.release()  # x's waiter gets k2 at once
    served = await waiting
    assert isinstance(served, KeyLease) and served.key is k2
    await served.release()


async def test_a_pool_handed_over_leases_from_its_heir_and_drops_queues_of_models_gone() -> None:
    """A reload's pool (`hand_over`): the old pool's calls lease the heir's keys (a key the
    reload added included), and a model nobody waits for any more leaves no queue behind."""
    old, _ = make_pool("k1", max_in_flight=1)
    heir, _ = make_pool("k1", "k2", max_in_flight=1)
    await (await old.lease_or_wait("gone", wait_s=0.0)).release()  # type: ignore[union-attr]
    heir.serves("m")
    old.hand_over(heir)

    first, second = await take(old, "m"), await take(old, "m")  # k1 and the heir's k2
    assert {first.key.secret, second.key.secret} == {"k1", "k2"}
    assert heir.waiting == 0 and list(heir.queues._queues) == []
    for lease in (first, second):
        await lease.release()
