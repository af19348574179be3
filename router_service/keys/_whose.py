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

__all__ = ["MANUAL_DISABLE_S", "disabled_by_hand", "whose_disables"]

# Manual disables last until an operator lifts them.
MANUAL_DISABLE_S = 10 * 365 * 86400.0
# A disable whose why is not known here (written on another replica, this one cut off from the
# store since: its deadline was kept as it was read, whys are not) ending later than this is an
# operator's; the router's own last a day or so (unless `auth_disable_s` says years).
_UNHEARD_BY_HAND_S = MANUAL_DISABLE_S / 2


async def whose_disables(pool: KeyPool, keys: Sequence[UpstreamKey]) -> list[bool | None]:
    """For each of `keys`: None when it is not disabled, True when an operator disabled it,
    False when the router did. Asked of the store, not of `health`: another replica may have
    disabled or enabled it since this one heard. What is recorded, never how long it lasts: an
    `auth_disable_s` of years is the router's own still; only one whose why was not heard (an
    outage) is told by how long it lasts."""
    found = await pool.store.read(
        deadlines=[pool.off_name(k) for k in keys], values=[pool.why_name(k) for k in keys]
    )
    manual, now = DisableReason.MANUAL.value, pool.clock.now()
    pairs = zip(found.deadlines, found.values, strict=True)
    return [
        None if not off else why == manual if why else off - now > _UNHEARD_BY_HAND_S
        for off, why in pairs
    ]


async def disabled_by_hand(pool: KeyPool) -> tuple[int, int]:
    """How many of the pool's keys an operator disabled, of how many are disabled: read when a
    caller is told that every key is, never on a lease's way."""
    while pool.heir is not None:  # reloaded: its keys are the heir's now
        pool = pool.heir
    whose = await whose_disables(pool, pool.keys)
    return sum(w is True for w in whose), sum(w is not None for w in whose)
