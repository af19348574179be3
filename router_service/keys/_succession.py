"""What a reload's key pools take over from the pools they replace (`Runtime.successor`)."""

from __future__ import annotations

from collections.abc import Mapping

from router_service.keys._pool import KeyPool

__all__ = ["take_over"]


def take_over(pools: Mapping[str, KeyPool], before: Mapping[str, KeyPool]) -> None:
    """Each key kept by a reload (same provider, same secret) keeps what this process knew of
    its health: a recovering key stays half-open (one call at a time), a failing one keeps its
    probe backoff and strikes, its last outcome still shows. The very `KeyHealth` is shared:
    the calls still running on the old pool count their leases where the new one reads them,
    and its use order goes on, so the least recently used key is still told apart."""
    for name, pool in pools.items():
        old = before.get(name)
        if old is None:
            continue
        for kept in pool.health.keys() & old.health.keys():
            pool.health[kept] = old.health[kept]
        pool.uses = old.uses
