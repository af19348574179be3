"""What a reload's key pools take over from the pools they replace (`Runtime.successor`)."""

from __future__ import annotations

from collections.abc import Mapping

from router_service.config import SwitchboardConfig
from router_service.keys._pool import KeyPool

__all__ = ["take_over"]


def take_over(
    pools: Mapping[str, KeyPool],
    before: Mapping[str, KeyPool],
    new: SwitchboardConfig,
    old: SwitchboardConfig,
) -> None:
    """Each key kept by a reload (same provider settings, same secret) keeps what this process
    knew of its health: a recovering key stays half-open (one call at a time), a failing one
    keeps its probe backoff and strikes, its last outcome still shows. The very `KeyHealth` is
    shared: the calls still running on the old pool count their leases where the new one reads
    them, and its use order goes on, so the least recently used key is still told apart. A
    provider whose settings changed (its endpoint, headers, credentials behind the same key
    string: a rotated service account file, an Azure identity), or `key_health` changed,
    starts afresh, as a new one would: its failures said nothing of the new settings, and a
    backoff grown to `probe_max_s` would keep a key the reload repaired disabled for up to an
    hour and a half (the store's disable is probed again `probe_initial_s` after the prober
    adopts it)."""
    for name, pool in pools.items():
        old_pool = before.get(name)
        if old_pool is None or not _same_settings(new, old, name):
            continue
        for kept in pool.health.keys() & old_pool.health.keys():
            pool.health[kept] = old_pool.health[kept]
        pool.uses = old_pool.uses


def _same_settings(new: SwitchboardConfig, old: SwitchboardConfig, name: str) -> bool:
    """Whether provider `name` is configured alike but for its keys' own limits and weights (a
    key's `rpm` changed is still the same key, reached the same way), and key health watched
    alike (a `probe_max_s` lowered applies to the probes already scheduled too)."""
    before = old.providers.get(name)
    if before is None or old.key_health != new.key_health:
        return False
    after = new.providers[name]
    return before.model_copy(update={"keys": []}) == after.model_copy(update={"keys": []})
