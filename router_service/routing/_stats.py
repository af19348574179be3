"""Routing statistics per deployment: one result per request per provider, in time buckets in
the StateStore (shared by replicas), read back as recency-weighted Beta parameters for Thompson
sampling, with the raw counts beside them for display. Latency is an EWMA kept per process."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from router_service.clock import Clock
from router_service.config import RoutingConfig
from router_service.outcomes import Outcome, Scope, counts_against
from router_service.state import StateStore

log = logging.getLogger("switchboard.routing")


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    deployment: str
    alpha: float  # recency-weighted successes + floor
    beta: float  # recency-weighted failures + floor
    successes: int  # raw, inside the window
    failures: int
    latency_ewma_s: float | None

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class RoutingStats:
    """Results are counted in the process and written to the store together: with the first
    result recorded `stats_flush_s` or more after the oldest unwritten one, `stats_flush_s`
    after it when no result follows (a timer: a replica gone quiet does not keep its last
    results from the others), before the admin view reads statistics, and at `aclose`; a
    `read` counts those not yet written without writing them. Each keeps
    the bucket of its own time (a bucket is `bucket_s` wide, named by when it began), and a
    shared store gets one write per deployment instead of one per request."""

    def __init__(self, store: StateStore, clock: Clock, config: RoutingConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._latency: dict[str, float] = {}
        # (deployment, bucket) -> field -> count, not yet written; since when (monotonic).
        self._pending: dict[tuple[str, int], dict[str, float]] = {}
        self._pending_since = 0.0
        self._timer: asyncio.TimerHandle | None = None  # the flush of a quiet replica
        self._late: asyncio.Task[None] | None = None  # that flush, running
        self._writes: set[asyncio.Task[None]] = set()  # flushes' writes, running
        self._closed = False

    @staticmethod
    def _name(deployment: str) -> str:
        return f"stats:{deployment}"

    async def record_failure(self, deployment: str, outcome: Outcome, scope: Scope) -> None:
        """A request's failure at `deployment`, when it is the deployment's (`counts_against`):
        one answer's failure, a key's or the caller's says nothing of how it serves."""
        if counts_against(outcome, scope):
            await self.record(deployment, False)

    async def record(self, deployment: str, ok: bool, latency_s: float | None = None) -> None:
        bucket = _bucket_of(self._clock.now(), self._config.bucket_s)
        if not self._pending:
            self._pending_since = self._clock.monotonic()
        counts = self._pending.setdefault((deployment, bucket), {})
        field = "s" if ok else "f"
        counts[field] = counts.get(field, 0.0) + 1.0
        if ok and latency_s is not None:
            self.observe_latency(deployment, latency_s)
        # Closed (a reload changed `routing:`), no timer writes it later: a call that outlived
        # the reload has its result written at once.
        if (
            self._closed
            or self._clock.monotonic() - self._pending_since >= self._config.stats_flush_s
        ):
            await self._flush_logged()  # written with a call's result: its answer stands
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._config.stats_flush_s, self._flush_late)

    def _flush_late(self) -> None:
        self._timer = None
        if self._pending and self._late is None:
            self._late = asyncio.get_running_loop().create_task(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self._flush_logged()
        finally:
            self._late = None

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:  # statistics are worth a try, no more (the next flush writes them)
            log.warning("writing routing statistics failed", exc_info=True)

    async def aclose(self) -> None:
        """Stop the timer and write what is left (the replica stops, or no longer routes with
        these statistics). Idempotent."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._late is not None:
            await asyncio.wait((self._late,))
        if self._writes:  # those whose callers left: what they failed to write is put back
            await asyncio.wait(self._writes)
        await self.flush()

    async def flush(self) -> None:
        """Write what was counted since the last flush (the admin view and shutdown call it too).
        The write goes on when its caller leaves (a call whose result made it): Redis runs a
        write whose reply nobody waits for, so it is neither lost nor written again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        write = asyncio.get_running_loop().create_task(self._write(pending))
        self._writes.add(write)
        write.add_done_callback(self._written)
        await asyncio.shield(write)

    async def _write(self, pending: dict[tuple[str, int], dict[str, float]]) -> None:
        ttl = self._config.thompson_window_s + self._config.bucket_s
        try:
            for key in list(pending):
                deployment, bucket = key
                await self._store.add_to_bucket(self._name(deployment), bucket, pending[key], ttl)
                del pending[key]
        except Exception:
            # Failed (the store refused it): not lost, every request's results since the last
            # write are in it. The next flush writes them.
            self._put_back(pending)
            raise

    def _written(self, write: asyncio.Task[None]) -> None:
        """A flush's write, done. Its failure was logged by its caller, or, when the caller
        left, is not reported: its results are put back for the next flush."""
        self._writes.discard(write)
        if not write.cancelled():
            write.exception()

    def _put_back(self, unwritten: dict[tuple[str, int], dict[str, float]]) -> None:
        """`unwritten` counted again, for a write `stats_flush_s` from now (a timer's, when no
        result comes): a store that is down is tried no more often than before."""
        for key, counts in unwritten.items():
            kept = self._pending.setdefault(key, {})
            for field, value in counts.items():
                kept[field] = kept.get(field, 0.0) + value
        self._pending_since = self._clock.monotonic()
        if not self._closed and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._config.stats_flush_s, self._flush_late)

    def observe_latency(self, deployment: str, seconds: float) -> None:
        previous = self._latency.get(deployment)
        alpha = self._config.latency_alpha
        self._latency[deployment] = (
            seconds if previous is None else alpha * seconds + (1 - alpha) * previous
        )

    def latency(self, deployment: str) -> float | None:
        return self._latency.get(deployment)

    async def read(self, deployments: Sequence[str]) -> list[DeploymentStats]:
        """Each result weighs by its age: 1 when new, falling linearly to 0 at the window's end.
        This replica's own results not yet written count too, added to what the store holds
        (not written first: a `thompson` group reads at every request, and a write there made
        each result one write of its own, a round trip before the request's plan)."""
        read = await self._store.read_buckets([self._name(d) for d in deployments])
        buckets = self._with_pending(deployments, read)
        now = self._clock.now()
        width, window = self._config.bucket_s, self._config.thompson_window_s
        floor = self._config.thompson_floor
        out = []
        for deployment, by_bucket in zip(deployments, buckets, strict=True):
            alpha = beta = 0.0
            raw_s = raw_f = 0
            for bucket, fields in by_bucket.items():
                start = -bucket if bucket < 0 else bucket  # negated (`_bucket_of`)
                age = max(0.0, now - (start + 0.5 * width))
                weight = max(0.0, 1.0 - age / window)
                if weight <= 0:
                    continue
                s, f = fields.get("s", 0.0), fields.get("f", 0.0)
                alpha += weight * s
                beta += weight * f
                raw_s += int(s)
                raw_f += int(f)
            out.append(
                DeploymentStats(
                    deployment,
                    alpha + floor,
                    beta + floor,
                    raw_s,
                    raw_f,
                    self._latency.get(deployment),
                )
            )
        return out

    def _with_pending(
        self, deployments: Sequence[str], read: list[dict[int, dict[str, float]]]
    ) -> list[dict[int, dict[str, float]]]:
        """`read` (the store's buckets of `deployments`) with this replica's unwritten counts
        added, in copies (the store's own are left as they are)."""
        if not self._pending:
            return read
        out = [dict(by_bucket) for by_bucket in read]
        for i, deployment in enumerate(deployments):
            for (counted, bucket), counts in self._pending.items():
                if counted != deployment:
                    continue
                fields = dict(out[i].get(bucket, {}))
                for field, count in counts.items():
                    fields[field] = fields.get(field, 0.0) + count
                out[i][bucket] = fields
        return out


def _bucket_of(now: float, width: float) -> int:
    """The bucket a result at `now` counts in: named by when it began (unix seconds), not by
    its number at one width, so a result keeps its age when `bucket_s` changes (a reload, or
    replicas that disagree during a rollout): by number, one written 60 s wide and read 600 s
    wide seemed new for the whole window, and one the other way round seemed gone.

    Stored negated: a replica of the version that numbered its buckets (sharing the store
    during a rolling upgrade) reads a start second as a number ages ahead, this version's
    results as fresh for a week; negated, it reads them as ages past and skips them. This
    version reads a positive name (that version's number) as a start second long past."""
    return -int(math.floor(now / width) * width)
