"""KeyPool: the keys of one provider, their health per key × model, and their leases.

Shared facts (in-flight slots, rate windows, cooldown and disable deadlines) live in the
StateStore so replicas agree; this process's bookkeeping (backoff strikes, half-open, probe
schedule) lives in `KeyHealth`. Choosing among usable keys: least in flight (per weight) first,
then least recently used."""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Collection, Sequence
from functools import partial

from router_service.clock import Clock
from router_service.config import CooldownsConfig, KeyConfig, KeyHealthConfig
from router_service.keys._denied import denied_or, deny_model
from router_service.keys._fingerprint import fingerprint
from router_service.keys._health import (
    ENABLED_BY_HAND,
    DisableReason,
    KeyHealth,
    by_share,
    credit_share,
)
from router_service.keys._lease import KeyLease, UpstreamKey
from router_service.keys._names import PoolNames
from router_service.keys._proved import proved
from router_service.keys._provider_throttle import enabled_unthrottles, throttle_provider
from router_service.keys._refusal import FREED_SOON_S, Refusal, Unavailable
from router_service.keys._snapshot import KeySnapshot, key_snapshot, manual_note
from router_service.keys._strikes import enabled_forgets_strikes, forget_strikes, strike
from router_service.keys._waiters import ModelQueues
from router_service.keys._whose import MANUAL_DISABLE_S as _FOREVER_S
from router_service.keys._whose import whose_disables
from router_service.outcomes import KeyAction, Outcome, Scope, key_action
from router_service.state import SlotGrant, SlotRequest, StateStore, correction_window

log = logging.getLogger("switchboard.keys")


class KeyPool(PoolNames):
    def __init__(
        self,
        provider: str,
        keys: Sequence[KeyConfig],
        *,
        store: StateStore,
        clock: Clock,
        cooldowns: CooldownsConfig,
        health: KeyHealthConfig | None = None,
        lease_ttl_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.keys = [
            UpstreamKey(
                provider=provider,
                secret=k.key.get_secret_value(),
                fingerprint=fingerprint(k.key.get_secret_value()),
                max_in_flight=k.max_in_flight,
                weight=k.weight,
                rpm=k.rpm,
                tpm=k.tpm,
            )
            for k in keys
        ]
        self.store = store
        self.clock = clock
        self.cooldowns = cooldowns
        self.health_config = health if health is not None else KeyHealthConfig()
        self.rng = rng if rng is not None else random.Random()
        self.lease_ttl_s = lease_ttl_s  # a lease's backstop expiry; a long stream renews it
        self.health: dict[str, KeyHealth] = {k.fingerprint: KeyHealth() for k in self.keys}
        self.queues = ModelQueues(clock)  # the requests waiting for a slot, per model
        self.uses = itertools.count(1)  # orders `last_used`; a reload's pool goes on with it
        self.models_seen: dict[str, None] = {}  # whose cooldowns of its keys it keeps
        # (model, key fingerprint) -> the lone key's `_health_names` (`_lease_only`).
        self._lone_names: dict[tuple[str, str], list[str]] = {}
        self.heir: KeyPool | None = None  # a reload's pool of these keys (`hand_over`)
        self.left_behind: dict[str, float] = {}  # under its names before a rename (`carry_renamed`)

    # -- leasing -------------------------------------------------------------------------------
    async def lease(
        self, model: str, exclude: Collection[str] = (), *, tokens: int = 0
    ) -> KeyLease | Unavailable:
        """Lease a usable key for `model` now, or say why none can be had."""
        if self.heir is not None:  # reloaded: its keys and limits are the heir's now
            return await self.heir.lease(model, exclude, tokens=tokens)
        candidates = [k for k in self.keys if k.fingerprint not in exclude]
        if not candidates:
            return Unavailable(Refusal.EXHAUSTED)
        if len(candidates) == 1:  # nothing to order: health is checked by the acquire itself
            return await self._lease_only(candidates[0], model, tokens, exclude)
        # Health and in-flight counts in one store call (one Redis round trip). Keys with no
        # limit are ordered by this replica's own leases instead: nothing of theirs is enforced,
        # and without counts to read their health comes from the store's read cache.
        shared = any(self._limited(k) for k in candidates)
        reading = await self.store.read(
            deadlines=self._health_names(model, candidates),
            held=[self.slot_name(k) for k in candidates] if shared else (),
        )
        held_all = (
            reading.held if shared else [self.health[k.fingerprint].in_flight for k in candidates]
        )
        found = self._usable_of(candidates, reading.deadlines)
        if isinstance(found, Unavailable):
            return found
        usable = [candidates[i] for i in found]
        weights, health = [k.weight for k in usable], [self.health[k.fingerprint] for k in usable]
        wait = math.inf  # the soonest a refused key frees: its rate window's room, or a call's end
        for i in by_share(weights, [held_all[i] for i in found], health):
            key = usable[i]
            grant = await self.store.acquire(self._slot_request(key, tokens))
            if grant.lease_id is not None:
                self._count_share(key, usable, exclude)
                return self._granted(key, model, grant.lease_id, grant, tokens)
            # 0.0: at its in-flight limit, free when a call ends (soon: no number), or sooner
            wait = min(wait, grant.retry_after_s or FREED_SOON_S)
        return Unavailable(Refusal.AT_LIMIT, None if wait in (FREED_SOON_S, math.inf) else wait)

    async def _lease_only(
        self, key: UpstreamKey, model: str, tokens: int, exclude: Collection[str]
    ) -> KeyLease | Unavailable:
        """The lone candidate, leased unless its health rules it out, in one store call."""
        names = self._lone_names.get((model, key.fingerprint))
        if names is None:  # kept: a pool's keys and models are the config's, few and fixed
            names = self._lone_names[model, key.fingerprint] = self._health_names(model, [key])
        grant = await self.store.acquire(self._slot_request(key, tokens, unless=names))
        if grant.lease_id is not None:
            self._count_share(key, [key], exclude)  # a failover's key: its call counts
            return self._granted(key, model, grant.lease_id, grant, tokens)
        if any(grant.deadlines):
            found = self._usable_of([key], list(grant.deadlines))
            if isinstance(found, Unavailable):
                return found
        return Unavailable(Refusal.AT_LIMIT, grant.retry_after_s or None)

    def _count_share(
        self, key: UpstreamKey, usable: Sequence[UpstreamKey], exclude: Collection[str]
    ) -> None:
        """Every lease counts in the weights' share of the keys in rotation: usable or tried
        already (a failover's key is not behind after), not those disabled or cooling (capped,
        their credit would push the others' to the floor, whose clamps undo the weights)."""
        keys = [k for k in self.keys if k.fingerprint in exclude or k in usable]
        weights, health = [k.weight for k in keys], [self.health[k.fingerprint] for k in keys]
        credit_share(weights, health, keys.index(key))

    def _limited(self, key: UpstreamKey) -> bool:
        """Whether leasing `key` enforces anything (else its slot only counts)."""
        limits = (key.max_in_flight, key.rpm, key.tpm)
        return self.health[key.fingerprint].half_open or any(x is not None for x in limits)

    def _slot_request(
        self, key: UpstreamKey, tokens: int, unless: Sequence[str] = ()
    ) -> SlotRequest:
        limit = key.max_in_flight
        if self.health[key.fingerprint].half_open:
            limit = 1  # a recovering key serves one real request at a time
        return SlotRequest(
            self.slot_now(key), self.lease_ttl_s, limit, key.rpm, key.tpm, tokens, tuple(unless)
        )

    def _granted(
        self, key: UpstreamKey, model: str, lease_id: str, grant: SlotGrant, tokens: int
    ) -> KeyLease:
        health = self.health[key.fingerprint]
        health.last_used = next(self.uses)  # a sequence number: no ties, whatever the clock
        health.in_flight += 1
        return KeyLease(self, key, model, lease_id, window=grant.window, tokens=tokens)

    async def _usable(
        self, model: str, candidates: list[UpstreamKey]
    ) -> list[UpstreamKey] | Unavailable:
        """The candidates neither disabled nor cooling for `model`, the provider not throttled."""
        if not candidates:
            return Unavailable(Refusal.EXHAUSTED)
        until = await self.store.deadlines(self._health_names(model, candidates))
        found = self._usable_of(candidates, until)
        return found if isinstance(found, Unavailable) else [candidates[i] for i in found]

    def _health_names(self, model: str, candidates: list[UpstreamKey]) -> list[str]:
        """What rules candidates out: provider throttle, key disables, key cooldowns (`model`)."""
        names = [self.throttle_name(model)]
        names += [self.off_name(k) for k in candidates]
        return names + [self.cool_name(k, model) for k in candidates]

    def _usable_of(
        self, candidates: list[UpstreamKey], until: list[float]
    ) -> list[int] | Unavailable:
        """Indices of the candidates `until` (read for `_health_names`) leaves usable."""
        now = self.clock.now()
        if until[0]:
            return Unavailable(Refusal.UNHEALTHY, until[0] - now)
        n = len(candidates)
        usable = [i for i in range(n) if not until[1 + i] and not until[1 + n + i]]
        if not usable:
            ends = [max(until[1 + i], until[1 + n + i]) for i in range(n)]
            disabled = all(until[1 + i] for i in range(n))
            reason = Refusal.DISABLED if disabled else Refusal.UNHEALTHY
            return Unavailable(reason, min(ends) - now)
        return usable

    async def lease_or_wait(
        self, model: str, exclude: Collection[str] = (), *, tokens: int = 0, wait_s: float
    ) -> KeyLease | Unavailable:
        """Like `lease`, but when every usable key is at its limit, wait in arrival order for up
        to `wait_s` seconds for a slot to free."""
        attempt = partial(self.lease, model, exclude, tokens=tokens)  # no frame of its own
        return await self.queues.of(model).wait_for(attempt, wait_s)

    def hand_over(self, heir: KeyPool) -> None:
        """A reload keeps these keys (`take_over`): who waits for a slot here waits on in one
        queue with the heir's callers, in turn, and leases from the heir, under its limits."""
        heir.queues = self.queues
        self.queues.served(heir.models_seen)
        self.heir = heir

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot of this pool's keys now, for any model."""
        return self.queues.waiting

    async def _release(self, key: UpstreamKey, lease_id: str, extra: Sequence[str] = ()) -> None:
        self.health[key.fingerprint].in_flight -= 1 + len(extra)
        for name in self.slot_names(key):  # one but across a rename
            for held in (lease_id, *extra):
                await self.store.release(name, held)
        self.queues.notify()

    async def _more_slots(self, key: UpstreamKey, most: int, into: list[str]) -> bool:
        """Up to `most` more in-flight slots of `key`, as many as it has free now (its rate
        windows untouched: `KeyLease.more_calls` counts the calls), each put in `into` as it is
        granted: a cancellation during the next one's round trip leaves none unowned (held to
        its TTL). False when nothing limits them."""
        request = self._slot_request(key, 0)
        if request.max_in_flight is None:
            return False
        request = SlotRequest(request.resource, request.ttl_s, request.max_in_flight)
        health = self.health[key.fingerprint]
        for _ in range(most):
            if (lease_id := (await self.store.acquire(request)).lease_id) is None:
                break
            into.append(lease_id)
            health.in_flight += 1
        return True

    async def _renew(self, key: UpstreamKey, lease_id: str) -> bool:
        names = reversed(self.slot_names(key))  # where it was moved to last, first
        return any([await self.store.renew(name, lease_id, self.lease_ttl_s) for name in names])

    async def _add_tokens(self, lease: KeyLease, delta: int, *, requests: int = 0) -> None:
        placed = correction_window(lease.window, delta, requests, self.clock.now(), lease.slot_id)
        if (delta or requests) and placed is not None:  # the windows moved with the slots
            await self.store.add_tokens(self.slot_now(lease.key), *placed[:3], lease_id=placed[3])

    # -- reacting to outcomes ------------------------------------------------------------------
    async def report(
        self,
        key: UpstreamKey,
        model: str,
        outcome: Outcome,
        retry_after_s: float | None = None,
        scope: Scope | None = None,
    ) -> None:
        """Apply the Outcome table's key action for one attempt's result (`key_action`)."""
        health = self.health[key.fingerprint]
        health.last_outcome = outcome
        if outcome is Outcome.OK:
            health.ok_at[model] = self.clock.now()  # a 429 after it begins a new streak
            if health.strikes:  # this replica met a 429 without a hint since its success
                await forget_strikes(self, key, health, [model])
            if health.half_open_left:
                health.half_open_left -= 1
                if not health.half_open_left:  # proved: trusted here, and (`proved`) everywhere
                    health.probe_backoff_s, health.probe_failures, health.reported = 0.0, 0, False
                    await proved(self, key)
            return
        action = key_action(outcome, scope)
        if action is KeyAction.COOL_KEY_MODEL:
            await self._rate_limited(key, health, model, retry_after_s)
        elif action is KeyAction.DISABLE_KEY_LONG:
            await self._disable(key, health, DisableReason.QUOTA, self.cooldowns.quota_disable_s)
        elif action is KeyAction.DISABLE_KEY:
            await self._disable(key, health, DisableReason.AUTH, self.cooldowns.auth_disable_s)
        elif action is KeyAction.DISABLE_KEY_MODEL:
            await deny_model(self, key, model)

    async def _rate_limited(
        self, key: UpstreamKey, health: KeyHealth, model: str, retry_after_s: float | None
    ) -> None:
        now = self.clock.now()
        if retry_after_s is None:
            retry_after_s = await strike(self, key, health, model)
        self.models_seen[model] = None
        await self.store.extend_deadline(self.cool_name(key, model), now + retry_after_s)
        await throttle_provider(self, key, model, now, retry_after_s)

    async def _disable(
        self, key: UpstreamKey, health: KeyHealth, reason: DisableReason, window_s: float
    ) -> None:
        if await self._disabled_by_hand(key):
            return  # the operator's until lifted: no probe, nor a shorter window, takes it over
        now = self.clock.now()
        if health.half_open:
            # It failed again while recovering: twice as long before the next probe.
            health.back_off(self.health_config)
            health.half_open_left = 0
        elif not health.probe_backoff_s:
            health.probe_backoff_s = self.health_config.probe_initial_s
        if health.disabled is DisableReason.NONE:  # once per disable, not per failed call
            log.warning(
                "key %s disabled (%s) for up to %gs; probed again in %gs",
                key,  # provider:fingerprint, never the key
                reason.value,
                window_s,
                health.probe_backoff_s,
            )
        health.disabled = reason
        health.next_probe_at = now + health.probe_backoff_s
        until = await self.store.extend_deadline(self.off_name(key), now + window_s)
        # For as long as the disable in force (a shorter one, quota after credentials, extends
        # nothing): without it, other replicas neither tell why nor probe the key.
        await self.store.set_value(self.why_name(key), reason.value, until - now)

    async def _disabled_by_hand(self, key: UpstreamKey) -> bool:
        """Whether an operator disabled the key, on any replica (`whose_disables`)."""
        return (await whose_disables(self, [key]))[0] is True

    # -- operating -----------------------------------------------------------------------------
    def find(self, key_fingerprint: str) -> UpstreamKey | None:
        return next((k for k in self.keys if k.fingerprint == key_fingerprint), None)

    async def set_enabled(
        self, key: UpstreamKey, enabled: bool, *, note: str = "", by: str = ""
    ) -> None:
        """An operator's switch; a disable keeps `note` (why) and `by` (who) for ListKeys."""
        health = self.health[key.fingerprint]
        if enabled:
            await self._enable(key, health)
        else:
            health.disabled = DisableReason.MANUAL
            await self.store.set_value(self.why_name(key), DisableReason.MANUAL.value, _FOREVER_S)
            await self.store.set_value(self.note_name(key), manual_note(note, by), _FOREVER_S)
            await self.store.extend_deadline(self.off_name(key), self.clock.now() + _FOREVER_S)

    async def _enable(self, key: UpstreamKey, health: KeyHealth) -> None:
        """The operator vouches for the key: no disable, set-aside or cooldown for any model (a
        `MODEL_DENIED`'s lasts `auth_disable_s`, which no probe lifts), no provider throttle its
        429s made (`enabled_unthrottles`), no half-open recovery (on every replica, at its
        prober's next look): it serves as many calls at once as its limits allow."""
        health.disabled = DisableReason.NONE
        health.probe_backoff_s, health.probe_failures, health.reported = 0.0, 0, False
        health.half_open_left = 0
        await enabled_forgets_strikes(self, key, health)
        await self.store.clear_deadline(self.off_name(key))
        await self.store.set_value(self.why_name(key), ENABLED_BY_HAND, _FOREVER_S)
        await enabled_unthrottles(self, key)
        self.queues.notify()

    async def recovered(self, key: UpstreamKey) -> None:
        """A probe passed: the key is half-open, one real request at a time (unless an operator
        disabled it meanwhile: theirs until they enable it)."""
        if await self._disabled_by_hand(key):
            return  # the prober's next look leaves it (`KeyProber._adopt`)
        health = self.health[key.fingerprint]
        health.disabled = DisableReason.NONE
        health.half_open_left = self.health_config.half_open_successes
        # No one's decision: an operator's disable queued meanwhile lands (`remember`).
        await self.store.clear_deadline(self.off_name(key), remember=False)
        self.queues.notify()

    def serves(self, model: str) -> None:
        """A deployment leases keys for `model`: `snapshot` reads any replica's cooldowns for it."""
        self.models_seen[model] = None

    async def snapshot(self) -> list[KeySnapshot]:
        models = list(self.models_seen)
        held = await self.store.held([self.slot_name(k) for k in self.keys])
        out = []
        for key, in_flight in zip(self.keys, held, strict=True):
            names = [self.off_name(key)] + [self.cool_name(key, m) for m in models]
            # The why and the note from the store: whichever replica disabled the key.
            found = await self.store.read(
                deadlines=names, values=[self.why_name(key), self.note_name(key)]
            )
            out.append(key_snapshot(key, in_flight, found, models, self.health[key.fingerprint]))
        return out

    async def unusable(self, model: str) -> Unavailable | None:
        """Why no key is usable for `model` now, for how long (None: one is, limits aside);
        every key refused it (`Refusal.DENIED`): no wait. Read on failures, never on the walk."""
        if self.heir is not None:  # reloaded: its keys are the heir's now
            return await self.heir.unusable(model)
        usable = await self._usable(model, list(self.keys))
        if not isinstance(usable, Unavailable):
            return None
        return await denied_or(self, model, usable)
