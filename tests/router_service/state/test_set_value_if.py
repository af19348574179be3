"""The StateStore contract for a value replaced only while it is what its writer read and a
deadline is over (`set_value_if`: a key's why, 'proved' once its disable is over): each store
(memory, Redis) decides alike, in the step that writes; a resilient store does not queue it."""

from __future__ import annotations

from collections.abc import Collection

from router_service.clock import ManualClock
from router_service.state import MemoryStateStore, ResilientStateStore
from tests.router_service.state.stores import MakeStore
from tests.router_service.state.test_redis_fallback import Flaky


async def test_a_value_is_replaced_only_while_it_was_one_of_those_and_the_deadline_over(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    was = ("auth", "quota")
    assert not await store.set_value_if("why", "proved", 60, was=was, unless="off")  # none yet
    assert await store.get_values(["why"]) == [None]
    await store.set_value("why", "manual", 60)
    assert not await store.set_value_if("why", "proved", 60, was=was, unless="off")
    assert await store.get_values(["why"]) == ["manual"]
    await store.set_value("why", "auth", 60)
    await store.extend_deadline("off", clock.now() + 30)
    assert not await store.set_value_if("why", "proved", 60, was=was, unless="off")  # in force
    assert await store.get_values(["why"]) == ["auth"]
    clock.advance(31)  # the deadline over
    assert await store.set_value_if("why", "proved", 100, was=was, unless="off")
    assert await store.get_values(["why"]) == ["proved"]
    clock.advance(99)  # its own TTL, not the one it replaced
    assert await store.get_values(["why"]) == ["proved"]
    assert not await store.set_value_if("why", "quota", 60, was=was, unless="off")  # proved
    clock.advance(2)
    assert await store.get_values(["why"]) == [None]
    await store.set_value("why", "quota", 5)
    clock.advance(6)  # expired: nothing to replace
    assert not await store.set_value_if("why", "proved", 60, was=was, unless="off")
    assert await store.set_value_if("why", "proved", 60, was=[*was, None], unless="off")
    assert await store.get_values(["why"]) == ["proved"]
    await store.extend_deadline("off", clock.now() + 30)
    assert not await store.set_value_if("new", "proved", 60, was=[None], unless="off")
    assert await store.get_values(["new"]) == [None]


class FlakyValues(Flaky):
    """Flaky's shared store, its conditional value writes unreachable too."""

    async def set_value_if(
        self, name: str, value: str, ttl_s: float, *, was: Collection[str | None], unless: str
    ) -> bool:
        self._check()
        return await super().set_value_if(name, value, ttl_s, was=was, unless=unless)


async def test_a_resilient_store_replaces_a_value_on_the_shared_one_never_late() -> None:
    """Decided by the shared store while it answers; in an outage on this replica's own only,
    never queued: written when the shared store is back, it could replace a why written there
    meanwhile (another replica's new disable, its probe passed since: half-open elsewhere)."""
    clock = ManualClock()
    shared, local = FlakyValues(clock), MemoryStateStore(clock)
    store = ResilientStateStore(shared, local, clock=clock, retry_interval_s=1.0)
    await shared.set_value("why", "auth", 60)  # another replica's: not known locally
    assert await store.set_value_if("why", "proved", 60, was=["auth"], unless="off")
    assert await shared.get_values(["why"]) == ["proved"]
    await store.set_value("why", "auth", 60)
    shared.up = False
    assert await store.set_value_if("why", "proved", 60, was=["auth", "quota"], unless="off")
    assert await local.get_values(["why"]) == ["proved"]
    await shared.set_value("why", "quota", 60)  # a new disable's, lifted since by a probe
    shared.up = True
    clock.advance(1.5)
    await store.set_value("other", "x", 60)  # back: the journal replayed
    assert await shared.get_values(["other", "why"]) == ["x", "quota"]
