"""What a reload's key pools take over from the pools they replace (`Runtime.successor`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router_service.config import ProviderConfig, SwitchboardConfig
from router_service.keys._pool import KeyPool

__all__ = ["carry_renamed", "carry_slots", "take_over"]


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
    state in the store `carry_renamed` moves to their new names; they are handed over
    (`KeyPool.hand_over`) once it did, the others at once."""
    heirs = _heirs(new, old)
    for name, was in heirs.items():
        pool, old_pool = pools[name], before[was]
        for kept in pool.health.keys() & old_pool.health.keys():
            pool.health[kept] = old_pool.health[kept]
        pool.uses = old_pool.uses
        pool.left_behind = old_pool.left_behind
        if name == was:
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
    """What the store knows of a renamed provider's keys (disables and why, cooldowns and
    MODEL_DENIED refusals, 429s and its throttle, per model), under its new name too, for every
    replica on the store: one read, then the deadlines set (they only extend: replicas
    reloading together agree), and the slots and rate windows moved (`carry_slots`). `moved`:
    more deadlines to carry (old name, new name), its deployments' cooldowns.

    The old names keep what they had (a replica not yet reloaded reads them); which of it this
    process carried away is noted (`KeyPool.left_behind`, handed on from pool to pool): a
    provider renamed back to one of them later (A -> B -> A) finds them stale, and what its
    keys met since (an operator's enable under B) is what it takes, not what A had then. A
    name written since (another replica's disable) is not stale, and stands."""
    kept = [key for key in pool.keys if key.fingerprint in old.health]
    models = list({**old.models_seen, **pool.models_seen})
    pairs = [*moved, *((old.throttle_name(m), pool.throttle_name(m)) for m in models)]
    for key in kept:
        pairs += [(old.off_name(key), pool.off_name(key))]
        for model in models:
            pairs += [(old.limited_name(key, model), pool.limited_name(key, model))]
            pairs += [(old.waited_name(key, model), pool.waited_name(key, model))]
            pairs += [(old.cool_name(key, model), pool.cool_name(key, model))]
            pairs += [(old.deny_name(key, model), pool.deny_name(key, model))]
    values = [(old.why_name(k), pool.why_name(k), k) for k in kept]
    values += [(old.note_name(k), pool.note_name(k), k) for k in kept]
    store, now = pool.store, pool.clock.now()
    found = await store.read(
        deadlines=[was for was, _ in pairs] + [name for _, name in pairs],
        values=[was for was, _, _ in values],
    )
    carried, theirs = found.deadlines[: len(pairs)], found.deadlines[len(pairs) :]
    theirs = await _stale_cleared(pool, [name for _, name in pairs], theirs)
    for (_, name), deadline, their in zip(pairs, carried, theirs, strict=True):
        if deadline > their:
            await store.extend_deadline(name, deadline)
    until = dict(zip([was for was, _ in pairs], carried, strict=True))
    theirs_by = dict(zip([name for _, name in pairs], theirs, strict=True))
    for (_, name, key), value in zip(values, found.values, strict=True):
        off = until[old.off_name(key)]
        # As long as the disable it tells of; a later one under the new name (an operator's,
        # another replica's since) keeps its own why: a manual one is probed by nobody.
        if value is not None and off > now and off >= theirs_by[pool.off_name(key)]:
            await store.set_value(name, value, off - now)
    left = {was: deadline for (was, _), deadline in zip(pairs, carried, strict=True) if deadline}
    pool.left_behind = {**pool.left_behind, **left}
    await carry_slots(pool, old)


async def _stale_cleared(pool: KeyPool, names: list[str], found: list[float]) -> list[float]:
    """`found` (the deadlines of `names`, the renamed pool's), but those this process carried
    away from these names at an earlier rename and no one wrote since: cleared (only while
    still what was carried away), then counted as none."""
    left = pool.left_behind
    stale = [i for i, name in enumerate(names) if found[i] and left.get(name) == found[i]]
    for i in stale:
        await pool.store.clear_deadline(names[i], only=found[i])
    now, taken = pool.clock.now(), set(names)
    pool.left_behind = {n: t for n, t in left.items() if t > now and n not in taken}
    return [0.0 if i in stale else until for i, until in enumerate(found)]


async def carry_slots(pool: KeyPool, old: KeyPool) -> None:
    """The old pool's slots of the renamed provider's keys (this process's leases under way)
    and their rate windows, moved under the new name (`StateStore.move_slots`): they count
    against its keys' `max_in_flight`, `rpm` and `tpm`, as under a kept name. Once more after
    the new pool serves: what the old one leased while the first move was under way. The old
    pool's leases are released and renewed where they went (`PoolNames.slot_names`)."""
    old.slots_moved_to = pool
    for key in pool.keys:
        if key.fingerprint in old.health:
            await pool.store.move_slots(old.slot_name(key), pool.slot_name(key))
