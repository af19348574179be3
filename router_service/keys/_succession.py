"""What a reload's key pools take over from the pools they replace (`Runtime.successor`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router_service.config import ProviderConfig, SwitchboardConfig
from router_service.keys._pool import KeyPool

__all__ = ["carry_renamed", "take_over"]


def take_over(
    pools: Mapping[str, KeyPool],
    before: Mapping[str, KeyPool],
    new: SwitchboardConfig,
    old: SwitchboardConfig,
) -> dict[str, str]:
    """Each key kept by a reload (same provider settings, same secret) keeps what this process
    knew of its health: a recovering key stays half-open (one call at a time), a failing one
    keeps its probe backoff and strikes, its last outcome still shows. The very `KeyHealth` is
    shared: the calls still running on the old pool count their leases where the new one reads
    them, and its use order goes on, so the least recently used key is still told apart; the
    calls waiting for a slot wait in the new pool (`KeyPool.hand_over`). A
    provider whose settings changed (its endpoint, headers, credentials behind the same key
    string: a rotated service account file, an Azure identity), or `key_health` changed,
    starts afresh, as a new one would: its failures said nothing of the new settings, and a
    backoff grown to `probe_max_s` would keep a key the reload repaired disabled for up to an
    hour and a half (the store's disable is probed again `probe_initial_s` after the prober
    adopts it). A provider renamed, its settings alike, is the same keys at the same endpoint
    (a key is its secret and where it is sent, not the name it is filed under): it takes
    over as if its name were kept. Returns the renamed ones, new name -> old name, whose
    state in the store `carry_renamed` moves to their new names."""
    heirs = _heirs(new, old)
    for name, was in heirs.items():
        pool, old_pool = pools[name], before[was]
        for kept in pool.health.keys() & old_pool.health.keys():
            pool.health[kept] = old_pool.health[kept]
        pool.uses = old_pool.uses
        old_pool.hand_over(pool)
    return {name: was for name, was in heirs.items() if name != was}


def _heirs(new: SwitchboardConfig, old: SwitchboardConfig) -> dict[str, str]:
    """Each new provider that keeps an old one's keys: the same name with settings alike, or
    a new name alike to an old name gone, with a key of its (new name -> old name)."""
    if old.key_health != new.key_health:  # a `probe_max_s` lowered applies to every key
        return {}
    heirs = {
        name: name
        for name, provider in new.providers.items()
        if name in old.providers and _alike(old.providers[name], provider)
    }
    arrived = [name for name in new.providers if name not in old.providers]
    gone = [name for name in old.providers if name not in new.providers]
    # Most keys in common first (a stable sort: then as configured): two providers alike
    # may share a key, and the one renamed is the one whose keys the new name has.
    pairs = [(_common(old.providers[w], new.providers[n]), n, w) for n in arrived for w in gone]
    taken: set[str] = set()
    for common, name, was in sorted(pairs, key=lambda pair: -pair[0]):
        alike = _alike(old.providers[was], new.providers[name])
        if common and alike and name not in heirs and was not in taken:
            heirs[name] = was
            taken.add(was)
    return heirs


def _alike(before: ProviderConfig, after: ProviderConfig) -> bool:
    """Configured alike but for its keys' own limits and weights (a key's `rpm` changed is
    still the same key, reached the same way)."""
    return before.model_copy(update={"keys": []}) == after.model_copy(update={"keys": []})


def _common(before: ProviderConfig, after: ProviderConfig) -> int:
    """How many key secrets the two have in common."""
    secrets = {key.key.get_secret_value() for key in before.keys}
    return len(secrets & {key.key.get_secret_value() for key in after.keys})


async def carry_renamed(pool: KeyPool, old: KeyPool, moved: Sequence[tuple[str, str]] = ()) -> None:
    """What the store knows of a renamed provider's keys (disables and why, cooldowns, 429s
    and its throttle, per model), under its new name too, for every replica on the store: one
    read, then the deadlines set (they only extend: replicas reloading together agree).
    `moved`: more deadlines to carry (old name, new name), its deployments' cooldowns."""
    kept = [key for key in pool.keys if key.fingerprint in old.health]
    models = list({**old.models_seen, **pool.models_seen})
    pairs = [*moved, *((old.throttle_name(m), pool.throttle_name(m)) for m in models)]
    for key in kept:
        pairs += [(old.off_name(key), pool.off_name(key))]
        for model in models:
            pairs += [(old.limited_name(key, model), pool.limited_name(key, model))]
            pairs += [(old.waited_name(key, model), pool.waited_name(key, model))]
            pairs += [(old.cool_name(key, model), pool.cool_name(key, model))]
    values = [(old.why_name(k), pool.why_name(k), k) for k in kept]
    values += [(old.note_name(k), pool.note_name(k), k) for k in kept]
    store, offs = pool.store, [pool.off_name(k) for k in kept]
    found = await store.read(
        deadlines=[was for was, _ in pairs] + offs, values=[was for was, _, _ in values]
    )
    carried, theirs = found.deadlines[: len(pairs)], found.deadlines[len(pairs) :]
    until = dict(zip([was for was, _ in pairs], carried, strict=True))
    theirs_by = dict(zip(offs, theirs, strict=True))
    for (_, name), deadline in zip(pairs, carried, strict=True):
        if deadline:
            await store.extend_deadline(name, deadline)
    now = pool.clock.now()
    for (_, name, key), value in zip(values, found.values, strict=True):
        off = until[old.off_name(key)]
        # As long as the disable it tells of; a later one under the new name (an operator's,
        # another replica's since) keeps its own why: a manual one is probed by nobody.
        if value is not None and off > now and off >= theirs_by[pool.off_name(key)]:
            await store.set_value(name, value, off - now)
