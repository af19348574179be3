"""A provider throttled for one model: most of its keys rate-limited for it at once."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from router_service.keys._lease import UpstreamKey

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool

__all__ = ["enabled_unthrottles", "throttle_provider"]


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


async def enabled_unthrottles(pool: KeyPool, key: UpstreamKey) -> None:
    """An operator's enable of `key`, for every model a replica of this config leases for: its
    cooldown and its 429s counted toward throttling the provider cleared, and the provider's
    throttle where they counted toward it (a throttle ends with the first of its keys' waits:
    the key's is over now). One its 429s had no part in (none in its window: say, the key was
    disabled meanwhile) stands: the keys that made it still meet the account's limit."""
    models = list(pool.models_seen)
    names = [pool.limited_name(key, m) for m in models] + [pool.waited_name(key, m) for m in models]
    found = await pool.store.deadlines(names)
    n = len(models)
    for i, model in enumerate(models):
        for name in pool.enabled_clears(key, model, bool(found[i] or found[n + i])):
            await pool.store.clear_deadline(name)
