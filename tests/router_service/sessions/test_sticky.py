"""SessionState.stick: a sticky value is renewed at most once per tenth of its TTL while the plan
read it unchanged, and written at once whenever it changes (on the memory store and a manual
clock: its expiry shows whether it was written)."""

from __future__ import annotations

from router_service.clock import ManualClock
from router_service.config import SessionsConfig
from router_service.sessions import SessionState
from router_service.state import MemoryStateStore

TTL = 3600.0


def sessions() -> tuple[SessionState, ManualClock]:
    clock = ManualClock()
    state = SessionState(MemoryStateStore(clock), clock, SessionsConfig(sticky_ttl_s=TTL))
    return state, clock


async def test_an_unchanged_sticky_value_is_not_rewritten_within_a_tenth_of_its_ttl() -> None:
    state, clock = sessions()
    await state.stick("s", "chat", "a/m")
    clock.advance(TTL * 0.1 - 1)
    await state.stick("s", "chat", "a/m", current="a/m")  # skipped: the TTL still runs from t=0
    clock.advance(TTL * 0.9 + 2)
    assert await state.sticky("s", "chat") is None  # expired on the first write's TTL


async def test_an_unchanged_sticky_value_is_renewed_after_a_tenth_of_its_ttl() -> None:
    state, clock = sessions()
    await state.stick("s", "chat", "a/m")
    clock.advance(TTL * 0.1 + 1)
    await state.stick("s", "chat", "a/m", current="a/m")  # renewed
    clock.advance(TTL * 0.9 + 2)
    assert await state.sticky("s", "chat") == "a/m"


async def test_a_changed_or_unread_sticky_value_is_written_at_once() -> None:
    state, clock = sessions()
    await state.stick("s", "chat", "a/m")
    clock.advance(1)
    await state.stick("s", "chat", "b/m", current="a/m")  # moved to another deployment
    assert await state.sticky("s", "chat") == "b/m"
    # The plan read no sticky value (cleared by thread protection, or expired): written again,
    # however recently this replica wrote the same deployment.
    clock.advance(10)
    await state.stick("s", "chat", "b/m", current=None)
    clock.advance(TTL - 0.5)  # past the expiry of the write before
    assert await state.sticky("s", "chat") == "b/m"  # the TTL ran from the last write


async def test_writes_older_than_the_renewal_age_are_forgotten() -> None:
    # What a replica remembers of its sticky writes only spares writes within a tenth of the
    # TTL: many conversations that ended must not stay remembered up to the cap.
    state, clock = sessions()
    for i in range(1000):
        await state.stick(f"s{i}", "chat", "a/m")
    assert state.remembered() == 1000
    clock.advance(TTL * 0.1)
    await state.stick("late", "chat", "a/m")
    assert state.remembered() == 1
    clock.advance(TTL * 0.1 - 1)
    await state.stick("late", "chat", "a/m", current="a/m")  # still remembered: not rewritten
    clock.advance(TTL * 0.9 + 2)
    assert await state.sticky("late", "chat") is None  # expired on the first write's TTL
