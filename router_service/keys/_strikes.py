"""A key × model's strikes: its consecutive 429s without a hint, each doubling its backoff.
Counted in the state store, so that every replica's 429s count together (two replicas each
meeting half of them backed the key off half as fast)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router_service.keys._health import KeyHealth, rate_limit_backoff
from router_service.keys._lease import UpstreamKey

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool

__all__ = ["enabled_forgets_strikes", "forget_strikes", "strike"]


async def strike(pool: KeyPool, key: UpstreamKey, health: KeyHealth, model: str) -> float:
    """One more strike of `key` × `model`, every replica's counted: the backoff it earns. The
    count outlives any backoff by the ceiling (`backoff_max_s`): a 429 once the last backoff
    is over is the next strike, and a count no 429 followed for that long is forgotten. A
    success here since the count's streak began (`ok_at`) makes this 429 a first strike again:
    a success writes nothing, so one on a replica that met none of the strikes (or was
    restarted since) ends the streak only at that replica's next 429 (those of replicas that
    did not see it go on counting until then)."""
    ceiling_s = pool.health_config.backoff_max_s
    name, ok_at = pool.strike_name(key, model), health.ok_at.get(model, 0.0)
    total = await pool.store.add_count(name, 2 * ceiling_s, restart_if_before=ok_at)
    health.strikes[model] = total  # this replica met one: its success ends the count
    return rate_limit_backoff(total, pool.cooldowns.rate_limit_backoff_s, ceiling_s, pool.rng)


async def forget_strikes(
    pool: KeyPool, key: UpstreamKey, health: KeyHealth, models: list[str]
) -> None:
    """A success ends the strikes of `key` for `models`, on every replica; only those this
    replica met (`health.strikes`) ask the store (a success is the hot path: it writes nothing
    when no 429 came between)."""
    for model in models:
        if health.strikes.pop(model, None) is not None:
            await pool.store.clear_count(pool.strike_name(key, model))


async def enabled_forgets_strikes(pool: KeyPool, key: UpstreamKey, health: KeyHealth) -> None:
    """An operator's enable ends the strikes of `key` for every model a replica of this config
    leases for (`models_seen`), not only those this replica met: the replica the enable came
    to may never have met one, and the strikes are every replica's."""
    health.strikes.clear()
    for model in pool.models_seen:
        await pool.store.clear_count(pool.strike_name(key, model))
