"""The soak's optional backends, each with what it samples every interval beside the processes.

- `--state redis`: the router keeps its shared state on the Redis at 127.0.0.1:6379 under a key
  prefix of this run's own (`redis_state_yaml`; its keys are deleted afterwards, `drop_keys`).
  Redis itself is a row: `INFO memory` used_memory, the key-tracking figures of `INFO stats`
  (tracking_total_keys: keys some client-side cache is told about; _items: those keys × the
  clients tracking each; _prefixes: broadcast prefixes) and the keys under the run's prefix.
  The first three are the whole server's: other users of a shared Redis move them too.
- `--tracing`: router and edge trace every request (`always_on`) and export the spans through
  the SDK's batch processor to the harness's OTLP sink (`_otlp_sink.py`, its own process): its
  counts are a row (export requests and spans received, read from its log; not judged, they
  grow with the load by design).

On the way out, what was started since is stopped first (the edge, the router, then the sink,
which prints its final counts as it stops), so that no router writes under the prefix after
its keys are deleted.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks._otlp_sink import parse_counts
from benchmarks._procs import Proc, ProcessGroup
from benchmarks._variants import (
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    drop_keys,
    redis_problem,
    redis_state_yaml,
    start_sink,
    stop_started_since,
)

Sampler = Callable[[], dict[str, float]]  # one row of figures (-1: could not be read)
REDIS_FIGURES = ("used_mib", "tracking_keys", "tracking_items", "tracking_prefixes", "keys")
SINK_FIGURES = ("exports", "spans")


@dataclass
class Backends:
    """What the chosen backends add to the run."""

    config: str = ""  # top-level YAML appended to the router's config
    env: dict[str, str] = field(default_factory=dict)  # for router and edge
    samplers: dict[str, Sampler] = field(default_factory=dict)  # row name -> its figures
    notes: dict[str, Any] = field(default_factory=dict)  # for the report and the JSON


def redis_figures(
    memory: Mapping[str, Any], stats: Mapping[str, Any], keys: int
) -> dict[str, float]:
    """A Redis row from `INFO memory`, `INFO stats` and the count of the run's keys (a
    server without key tracking, older than 6, has no tracking fields: -1)."""

    def stat(name: str) -> float:
        return float(stats.get(name, -1))

    return {
        "used_mib": float(memory["used_memory"]) / 2**20,
        "tracking_keys": stat("tracking_total_keys"),
        "tracking_items": stat("tracking_total_items"),
        "tracking_prefixes": stat("tracking_total_prefixes"),
        "keys": float(keys),
    }


def sink_figures(log_text: str) -> dict[str, float]:
    """The sink's row from its log: the last counts it printed (none yet: zero)."""
    counts = parse_counts(log_text) or {}
    return {
        "exports": float(counts.get("trace_requests", 0)),
        "spans": float(counts.get("spans", 0)),
    }


class RedisSampler:
    """Reads the Redis row; a failed read is a row of -1 (left out of the trends)."""

    def __init__(self, prefix: str) -> None:
        import redis

        self._prefix = prefix
        self._client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)

    def __call__(self) -> dict[str, float]:
        import redis

        try:
            client = self._client
            keys = sum(1 for _ in client.scan_iter(match=f"{self._prefix}:*", count=1000))
            return redis_figures(client.info("memory"), client.info("stats"), keys)
        except redis.RedisError:
            return dict.fromkeys(REDIS_FIGURES, -1.0)

    def close(self) -> None:
        self._client.close()


@contextlib.contextmanager
def backends(group: ProcessGroup, *, state: str, tracing: bool) -> Iterator[Backends]:
    """The chosen backends, set up for processes started inside; on exit those processes are
    stopped, the sink's final counts read and the run's Redis keys deleted (`notes`)."""
    out = Backends()
    before = list(group.procs)
    sampler: RedisSampler | None = None
    sink: Proc | None = None
    try:
        if state == "redis":
            if problem := redis_problem():
                raise RuntimeError(f"--state redis: {problem}")
            # A prefix of this run's own: the server is shared (tests, other runs).
            prefix = out.notes["redis_prefix"] = f"soak-{secrets.token_hex(6)}"
            out.config += redis_state_yaml(prefix)
            sampler = out.samplers["redis"] = RedisSampler(prefix)
        if tracing:
            sink, env = start_sink(group)
            out.env.update(env)
            out.samplers["sink"] = lambda: sink_figures(_log(sink))
        yield out
    finally:
        stop_started_since(group, before)  # the sink last: it prints its final counts
        if sink is not None:
            out.notes["sink"] = parse_counts(_log(sink))
        if sampler is not None:
            sampler.close()
            # Keys found prove the router used Redis (it falls back to local state without).
            out.notes["redis_keys"] = drop_keys(out.notes["redis_prefix"])


def _log(proc: Proc | None) -> str:
    if proc is None:
        return ""
    with contextlib.suppress(OSError):
        return proc.log.read_text(errors="replace")
    return ""


def backend_lines(notes: Mapping[str, Any]) -> list[str]:
    """What the report says about the backends (nothing without any)."""
    lines = []
    if "redis_prefix" in notes:
        keys = notes.get("redis_keys")
        found = "unknown" if keys is None else f"{keys:,}"
        lines.append(f"redis: state under {notes['redis_prefix']}:, {found} keys left, deleted")
    if "sink" in notes:
        counts = notes["sink"] or {}
        lines.append(
            f"tracing: the sink received {counts.get('trace_requests', 0):,} exports, "
            f"{counts.get('spans', 0):,} spans"
        )
    return lines
