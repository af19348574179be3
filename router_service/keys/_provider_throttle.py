"""A provider throttled for one model: most of its keys rate-limited for it at once."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from router_service.keys._lease import UpstreamKey

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool

__all__ = ["throttle_provider"]


async def throttle_provider(
    pool: KeyPool, key: UpstreamKey, model: str, now: float, wait_s: float
) -> None:
    """Most keys rate-limited for `model` at once is the account's limit for it reached:
    cool the provider for `model` (per model, as providers' limits are) instead of burning
    through every key, until the first of them may be used again (one key's daily limit is
    its own). Each key's last 429 and wait are deadlines in the store: every replica's
    429s count together."""
    keys, store, config = pool.keys, pool.store, pool.health_config
    if len(keys) < 2:
        return
    window = config.provider_throttle_window_s
    await store.extend_deadline(pool.limited_name(key, model), now + window)
    await store.extend_deadline(pool.waited_name(key, model), now + wait_s)
    n = len(keys)
    limited = [pool.limited_name(k, model) for k in keys]
    found = await store.deadlines(limited + [pool.waited_name(k, model) for k in keys])
    # A wait already over (or unknown: written by an older replica) ends the throttle now.
    ends = [found[n + i] or now for i in range(n) if found[i]]
    needed = max(2, math.ceil(config.provider_throttle_fraction * n))
    if len(ends) >= needed and min(ends) > now:
        await store.extend_deadline(pool.throttle_name(model), min(ends))
