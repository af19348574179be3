"""A key's half-open recovery ended, its calls proved it: trusted on every replica."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router_service.keys._health import PROBED_WHYS, PROVED
from router_service.keys._lease import UpstreamKey

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool

__all__ = ["proved"]


async def proved(pool: KeyPool, key: UpstreamKey) -> None:
    """Half-open ended here, the key's calls proved it: its why says so (`PROVED`), and every
    replica's prober ends its own half-open at its next look (`KeyProber._adopt`). Without
    it, a replica half-open since another's probe passed stays so until its own calls prove
    the key, and the slot's limit of 1 is shared: while this one keeps a call in flight on
    it, none of that replica's is let through. Left alone when the why is no longer the
    recovered disable's: an operator's disable or enable meanwhile stays theirs, a new
    disable (another replica's call refused meanwhile) stays in force, checked in the same
    atomic step as the write (a disable landing between a read and a write would lose its
    why: an operator's no longer theirs, a new one neither adopted nor probed elsewhere)."""
    # As long as the why it replaces could have lived: past every replica's next look.
    ttl_s = max(pool.cooldowns.auth_disable_s, pool.cooldowns.quota_disable_s)
    why, off = pool.why_name(key), pool.off_name(key)
    # Its why may be gone with its window (a probe passing late in it): it proves it all the same.
    await pool.store.set_value_if(why, PROVED, ttl_s, was=(*PROBED_WHYS, None), unless=off)
