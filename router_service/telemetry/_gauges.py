"""State gauges: keys by state, keys' in-flight requests, cooldowns and bans in force, and the
read cache's and the outages' counts (Redis state).

Pool snapshots and cooldown deadlines live in the StateStore and are read asynchronously, while
the SDK's gauge callbacks are synchronous; so one owned task per router polls them every
`telemetry.state_interval_s` into a `StateView` that the callbacks read. Nothing runs when
metrics are off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from router_service.telemetry import _attributes as attr
from router_service.telemetry._instruments import Labels, StateView
from router_service.telemetry._state import Telemetry, current
from router_service.telemetry._zeros import zero_counters

if TYPE_CHECKING:
    from router_service.keys import KeyHealth
    from router_service.runtime import Runtime

__all__ = ["StateGauges"]

log = logging.getLogger("switchboard.telemetry")
_STATES = ("active", "cooling", "disabled")


class StateGauges:
    """`start()` creates the runtime's counter series at 0 (`_zeros.py`) and begins polling
    `runtime`; `aclose()` (idempotent) stops and forgets its view."""

    def __init__(self, runtime: Runtime, interval_s: float = 10.0) -> None:
        self._runtime = runtime
        self._interval_s = interval_s
        self._telemetry: Telemetry | None = None
        self._task: asyncio.Task[None] | None = None
        # Keys reloads removed that calls begun before them still held (`succeed`): provider,
        # fingerprint, and the old pool's health, whose `in_flight` those calls release.
        self._retired: list[tuple[str, str, KeyHealth]] = []

    def succeed(self, before: StateGauges) -> None:
        """This runtime follows `before`'s (a reload): the keys of `before`'s pools this one's
        do not carry (removed, or their provider's settings changed), reported in flight while
        the calls under way still hold them (bounded by those: a key none holds now is left
        out, as no new call can lease it)."""
        kept = {id(h) for pool in self._runtime.pools.values() for h in pool.health.values()}
        old = before._runtime.pools.items()
        gone = [(name, fp, h) for name, pool in old for fp, h in pool.health.items()]
        self._retired = [
            (name, fp, health)
            for name, fp, health in [*before._retired, *gone]
            if health.in_flight > 0 and id(health) not in kept
        ]

    def start(self) -> None:
        telemetry = current()
        if not telemetry.metering or self._task is not None:
            return
        self._telemetry = telemetry
        zero_counters(telemetry, self._runtime)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # the store may be away; gauges keep their last values
                log.warning("polling router state for metrics failed", exc_info=True)
            await asyncio.sleep(self._interval_s)

    async def poll(self) -> StateView:
        """Read the runtime's state now and publish it to the gauges."""
        runtime = self._runtime
        now = runtime.clock.now()
        view = StateView()
        for provider, pool in runtime.pools.items():
            for state in _STATES:
                view.keys[_labels(provider, (attr.KEY_STATE, state))] = 0
            view.cooldowns[_labels(provider, (attr.SCOPE, "key"))] = 0  # disabled: none yet
            for snap in await pool.snapshot():
                state = (
                    "disabled"
                    if snap.disabled_until > now
                    else "cooling"
                    if snap.cooling
                    else "active"
                )
                _bump(view.keys, _labels(provider, (attr.KEY_STATE, state)))
                in_flight = _labels(provider, (attr.KEY_FINGERPRINT, snap.key.fingerprint))
                # This process's leases: summed over replicas they count each call once,
                # where each replica's view of the shared count would count it once per replica.
                view.in_flight[in_flight] = snap.held_here
                _bump(
                    view.cooldowns, _labels(provider, (attr.SCOPE, "key_model")), len(snap.cooling)
                )
                if state == "disabled":
                    _bump(view.cooldowns, _labels(provider, (attr.SCOPE, "key")))
        self._retired = [entry for entry in self._retired if entry[2].in_flight > 0]
        for provider, fp, health in self._retired:  # a key a reload removed, still held here
            _bump(view.in_flight, _labels(provider, (attr.KEY_FINGERPRINT, fp)), health.in_flight)
        deployments = runtime.planner.measured
        until = await runtime.store.deadlines([d.cooldown_name for d in deployments])
        for deployment, end in zip(deployments, until, strict=True):
            scope = _labels(deployment.provider, (attr.SCOPE, "deployment"))
            _bump(view.cooldowns, scope, 1 if end > now else 0)
        for result, count in runtime.store.read_cache_counts().items():
            view.read_cache[((attr.CACHE_RESULT, result),)] = count
        for name, count in runtime.store.outage_counts().items():
            getattr(view, name)[()] = count
        await self._poll_budgets(view)
        telemetry = self._telemetry or current()
        ttl_s = runtime.config.sessions.thread_cooldown_s
        for provider in runtime.pools:
            view.bans[_labels(provider)] = 0
        for provider, count in telemetry.bans.active(ttl_s, runtime.clock.monotonic()).items():
            view.bans[_labels(provider)] = count
        telemetry.metrics.views[id(self)] = view
        return view

    async def _poll_budgets(self, view: StateView) -> None:
        # Imported here: auth's limits sit above the engine and providers, which import
        # telemetry (their spans); a module-level import would make the cycle.
        from router_service.auth import Budgets, Caller

        runtime = self._runtime
        callers = [Caller.from_config(c) for c in runtime.config.auth.clients]
        budgeted = [caller for caller in callers if caller.budgeted]
        if not budgeted:
            return
        for standing in await Budgets(runtime.store, runtime.clock).standing(budgeted):
            labels = ((attr.CLIENT, standing.client), (attr.BUDGET_PERIOD, standing.period))
            if standing.unit == "usd":
                view.spend_used[labels] = standing.used
                view.spend_limit[labels] = standing.limit
            else:
                view.budget_used[labels] = int(standing.used)
                view.budget_limit[labels] = int(standing.limit)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))
        if self._telemetry is not None:
            self._telemetry.metrics.views.pop(id(self), None)


def _labels(provider: str, *pairs: tuple[str, str]) -> Labels:
    return ((attr.PROVIDER, provider), *pairs)


def _bump(counts: dict[Labels, int], labels: Labels, by: int = 1) -> None:
    counts[labels] = counts.get(labels, 0) + by
