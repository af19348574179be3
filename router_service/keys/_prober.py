"""KeyProber: brings disabled keys back without a vicious circle.

A disabled key is probed cheaply (a models list or a 1-token request) on an exponential backoff
with jitter, a few at a time. A passing probe makes the key half-open — one real request at a
time until it has proved itself — and a failure while half-open doubles the backoff (KeyPool).
A key that keeps failing backs off to the ceiling and is reported, never retried in a loop.
Replicas sharing state each probe the keys any of them disabled for credentials or quota
(`_adopt`), so no key waits for a replica that is gone, and take over its recovery: a key whose
probe passed on another replica is half-open here too, one that fails again while half-open,
wherever it does, doubles the backoff here too, and one whose calls proved it on any replica
(`proved`) is trusted here too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping

from router_service.clock import Clock
from router_service.config import KeyHealthConfig
from router_service.errors import UpstreamFailure
from router_service.keys._health import (
    ENABLED_BY_HAND,
    PROBED_WHYS,
    PROVED,
    DisableReason,
    KeyHealth,
    jittered,
)
from router_service.keys._lease import UpstreamKey
from router_service.keys._pool import KeyPool
from router_service.outcomes import Outcome

log = logging.getLogger("switchboard.keys")

# Probe one key: return on success, raise UpstreamFailure on failure.
ProbeFn = Callable[[UpstreamKey], Awaitable[None]]
_PROBED = (DisableReason.AUTH, DisableReason.QUOTA)
_ADOPTED = PROBED_WHYS
_TRUSTED = (ENABLED_BY_HAND, PROVED)  # whys that end half-open on every replica
_KEY_FAILURES = (Outcome.AUTH_INVALID, Outcome.QUOTA_EXHAUSTED, Outcome.RATE_LIMITED)


class KeyProber:
    def __init__(
        self,
        pools: Mapping[str, KeyPool],
        probes: Mapping[str, ProbeFn],
        *,
        clock: Clock,
        config: KeyHealthConfig,
        rng: random.Random | None = None,
    ) -> None:
        self._pools = pools
        self._probes = probes
        self._clock = clock
        self._config = config
        self._rng = rng if rng is not None else random.Random()
        self._task: asyncio.Task[None] | None = None

    def due(self) -> list[tuple[KeyPool, UpstreamKey]]:
        now = self._clock.now()
        return [
            (pool, key)
            for pool in self._pools.values()
            for key in pool.keys
            if pool.health[key.fingerprint].disabled in _PROBED
            and pool.health[key.fingerprint].next_probe_at <= now
        ]

    async def tick(self) -> int:
        """Probe every key that is due, at most `probe_concurrency` at once. Returns how many."""
        for pool in self._pools.values():
            await self._adopt(pool)
        due = self.due()
        gate = asyncio.Semaphore(self._config.probe_concurrency)

        async def one(pool: KeyPool, key: UpstreamKey) -> None:
            async with gate:
                await self._probe(pool, key)

        async with asyncio.TaskGroup() as tasks:
            for pool, key in due:
                tasks.create_task(one(pool, key))
        return len(due)

    async def _adopt(self, pool: KeyPool) -> None:
        """This replica's view of each key's disable, brought in line with the store's. Keys
        another replica disabled for their credentials or quota are probed here too: that
        replica may be gone (restarted, scaled down), and nothing else would bring them back
        before their window ends. A key this replica was probing is left once its disable is
        over (an operator enabled it, its window ended) or an operator's own: a probe passing
        here would lift an operator's disable, or make an enabled key half-open."""
        found = await pool.store.read(
            deadlines=[pool.off_name(k) for k in pool.keys],
            values=[pool.why_name(k) for k in pool.keys],
        )
        now = self._clock.now()
        for key, until, why in zip(pool.keys, found.deadlines, found.values, strict=True):
            health = pool.health[key.fingerprint]
            # Left when over (an operator's disable too: enabled through another replica, its
            # next failure here is told as a new disable) or an operator's now; a why the store
            # lost (dropped from a long outage's bounded journal) leaves it in this one's hands.
            over = health.disabled is not DisableReason.NONE and not until
            if health.half_open and why in _TRUSTED:  # an operator's, or proved on any replica
                health.half_open_left, health.probe_failures = 0, 0  # as half-open's own end
                health.probe_backoff_s, health.reported = 0.0, False
            if over and health.disabled in _PROBED and why in _ADOPTED:
                self._recovered_elsewhere(key, health)
            elif over or (health.disabled in _PROBED and why == DisableReason.MANUAL.value):
                health.disabled = DisableReason.NONE
                health.probe_backoff_s, health.reported = 0.0, False
            elif health.disabled not in _PROBED and until and why in _ADOPTED:
                self._disabled_elsewhere(key, health, DisableReason(why), now)

    def _disabled_elsewhere(
        self, key: UpstreamKey, health: KeyHealth, reason: DisableReason, now: float
    ) -> None:
        """Another replica disabled the key (for `reason`): probed here too. One half-open
        here failed again, wherever it did: twice as long before the next probe, as on the
        replica that met the failure (`KeyPool._disable`), not `probe_initial_s` again (a
        key whose probe passes but whose calls fail would be probed and let back in every
        `probe_initial_s`, for ever, its failures landing on the other replicas)."""
        health.disabled = reason
        if health.half_open:
            health.back_off(self._config)
            health.half_open_left = 0
        else:
            health.probe_backoff_s = self._config.probe_initial_s
        health.next_probe_at = now + jittered(health.probe_backoff_s, self._rng)
        log.info("key %s was disabled (%s) by another replica; probed here too", key, reason.value)

    def _recovered_elsewhere(self, key: UpstreamKey, health: KeyHealth) -> None:
        """Its disable lifted while its why lives on (as long as the disable would have): no
        operator's enable, no window's end, but another replica's probe passing
        (`KeyPool.recovered`). Half-open here too, as there: one real request at a time
        (the slot's limit of 1 is shared), its probe backoff kept, so that a failure doubles
        it rather than start the probes again from `probe_initial_s`."""
        health.disabled = DisableReason.NONE
        health.half_open_left = self._config.half_open_successes
        log.info("key %s passed its probe on another replica; half-open", key)

    async def _probe(self, pool: KeyPool, key: UpstreamKey) -> None:
        health = pool.health[key.fingerprint]
        try:
            await self._probes[pool.provider](key)
        except UpstreamFailure as failure:
            self._failed(key, health, failure.outcome)
            return
        except Exception as exc:  # a bug in a probe: the others, and this key's next probe, go on
            # Its kind only: a probe's error may quote its URL (Gemini's carries `?key=`).
            log.error("probing key %s failed: %s", key, type(exc).__name__)
            self._failed(key, health, None)
            return
        log.info("key %s passed its probe; half-open", key)
        await pool.recovered(key)

    def _failed(self, key: UpstreamKey, health: KeyHealth, outcome: Outcome | None) -> None:
        """A failed probe: a key failure doubles the backoff (up to the ceiling, reported
        there); anything else (a connect failure, a 5xx, a bug) says nothing of the key and
        keeps it. Either way the next probe waits for it: never a tight loop."""
        now = self._clock.now()
        if outcome is not None and outcome in _KEY_FAILURES:
            health.probe_failures += 1
            health.back_off(self._config)
            if health.probe_backoff_s >= self._config.probe_max_s and not health.reported:
                health.reported = True
                log.warning(
                    "key %s keeps failing its probes (%s); probing every %.0fs",
                    key,
                    outcome.name,
                    self._config.probe_max_s,
                )
        health.next_probe_at = now + jittered(health.probe_backoff_s, self._rng)

    async def run(self) -> None:
        """Probe forever, every `probe_interval_s` (until cancelled)."""
        while True:
            await self.look()
            await asyncio.sleep(self._config.probe_interval_s)

    async def look(self) -> None:
        """One `tick` of `run`: a failure is logged, and the next look tries again (a prober
        stopped by one would leave every disabled key to its window's end)."""
        try:
            await self.tick()
        except Exception:
            log.exception("probing keys failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="switchboard-key-prober")

    async def shutdown(self) -> None:
        """Stop probing; idempotent. The task is owned: cancelled and awaited here."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait() does not re-raise the task's CancelledError, but does raise our own.
            await asyncio.wait((task,))
