"""Whose a key's disable is: an operator's (until they enable it) or the router's own (refused
credentials, quota run out: until a probe finds the key working), as the store recorded it with
the disable (`why_name`), whichever replica made it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from router_service.keys._health import DisableReason
from router_service.keys._lease import UpstreamKey

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool

__all__ = ["disabled_by_hand", "whose_disables"]


async def whose_disables(pool: KeyPool, keys: Sequence[UpstreamKey]) -> list[bool | None]:
    """For each of `keys`: None when it is not disabled, True when an operator disabled it,
    False when the router did. Asked of the store, not of `health`: another replica may have
    disabled or enabled it since this one heard. What is recorded, never how long it lasts: an
    `auth_disable_s` of years is the router's own still."""
    found = await pool.store.read(
        deadlines=[pool.off_name(k) for k in keys], values=[pool.why_name(k) for k in keys]
    )
    manual = DisableReason.MANUAL.value
    pairs = zip(found.deadlines, found.values, strict=True)
    return [why == manual if off else None for off, why in pairs]


async def disabled_by_hand(pool: KeyPool) -> tuple[int, int]:
    """How many of the pool's keys an operator disabled, of how many are disabled: read when a
    caller is told that every key is, never on a lease's way."""
    while pool.heir is not None:  # reloaded: its keys are the heir's now
        pool = pool.heir
    whose = await whose_disables(pool, pool.keys)
    return sum(w is True for w in whose), sum(w is not None for w in whose)
