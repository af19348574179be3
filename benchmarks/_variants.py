"""The variants probe: what tracing and the Redis state backend cost in throughput.

Each variant is a Switchboard stack (router + edge) of its own, started after the main matrix
together with a fresh plain stack, both warmed the same way, measured in turn with
non-streaming load at one level (plain, variant, plain, variant …), then both stopped before
the next variant starts, so that variants never share the machine with each other or with the
idle-streams probe. The plain stack is a fresh one, not the matrix's: that one has the whole
load matrix behind it (every level, streaming, thousands of connections), the variant's stack
nothing, and a comparison should differ in the variant only.

- `tracing`: both processes export every span (`always_on`) through the SDK's batch processor to
  an OTLP/gRPC sink of ours (`_otlp_sink.py`, its own process), which counts what arrived.
- `redis`: the router keeps its shared state on the Redis at 127.0.0.1:6379 under a key prefix
  of this run's own (deleted afterwards); skipped when Redis does not answer PING.

Only raw runs go into the JSON; the medians, the cost and the two target lines are computed
when the report is rendered (`variant_targets`, used by `_report.py`, and `variants_markdown`,
by `_render.py`), so `--report` renders old runs too: a run without the probe gets N/A.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._measure import LoadPlan, measure, warm_up
from benchmarks._otlp_sink import parse_counts
from benchmarks._procs import Proc, ProcessGroup, cpu_seconds, free_port, wait_tcp
from benchmarks._systems import REPO, start_switchboard

VARIANT_LEVEL = 16  # one level: the variants' cost per request, with the stack busy
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 0
VARIANTS = ("tracing", "redis")


@dataclass
class Context:
    group: ProcessGroup
    upstream: str  # the mock's OpenAI base URL
    tmp: Path
    src: Path  # where Switchboard runs from (work tree or snapshot)
    plan: LoadPlan
    level: int = VARIANT_LEVEL
    rounds: int = 3
    say: Callable[[str], None] = print


def redis_problem(host: str = REDIS_HOST, port: int = REDIS_PORT, timeout_s: float = 1.0) -> str:
    """Why Redis cannot be used ('' when it answers PING). An inline command needs no client."""
    try:
        with socket.create_connection((host, port), timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(128)
    except OSError as exc:
        return f"Redis not reachable at {host}:{port} ({exc})"
    if not reply.startswith(b"+PONG"):  # e.g. -NOAUTH: a password this harness does not have
        return f"Redis at {host}:{port} answered PING with {reply[:60]!r}"
    return ""


def _trim(run: dict[str, Any], rnd: int, which: str) -> dict[str, Any]:
    """The fields of one run the report uses (the rest stays in the main matrix's shape)."""
    keep = ("rps", "errors", "error_samples", "other_cores", "cpu_s_per_1k", "client")
    lat = run.get("latency_ms") or {}
    return {"round": rnd, "system": which, "p50_ms": lat.get("p50")} | {k: run.get(k) for k in keep}


def _compare(
    ctx: Context, block: dict[str, Any], name: str, env: dict[str, str], extra_config: str
) -> None:
    """Start the variant's stack and a fresh plain one, warm both, then plain and variant in
    turn for every round; each run goes into `block` as it ends (a failure keeps the runs before
    it)."""
    variant, _ = start_switchboard(
        ctx.group, ctx.upstream, ctx.tmp, ctx.src, variant=name, env=env, extra_config=extra_config
    )
    plain, _ = start_switchboard(ctx.group, ctx.upstream, ctx.tmp, ctx.src, variant=f"{name}-plain")
    for system in (plain, variant):
        warm_up(system, ctx.plan)
    for rnd in range(ctx.rounds):
        for which, system in (("plain", plain), ("variant", variant)):
            result = measure(system, "unary", ctx.level, ctx.plan)
            block["runs"].append(_trim(result, rnd, which))
            errors = f", {result['errors']} errors" if result["errors"] else ""
            ctx.say(
                f"c={ctx.level:<4} r{rnd} {name:<8} {which:<8} {result['rps']:8.1f} req/s{errors}"
            )


# What a variant's comparison can fail with: a stack that does not start, a load generator that
# fails, a system that dies or hangs (`measure`), a load generator that times out.
PROBE_FAILED = (RuntimeError, subprocess.SubprocessError)


def _failed(block: dict[str, Any], label: str, exc: BaseException) -> None:
    """A failed run counts against the target (as in the load matrix): FAIL, not N/A."""
    block["failed"] = True
    block["note"] = f"{label} variant failed: {type(exc).__name__}: {str(exc)[:300]}"


def stop_started_since(group: ProcessGroup, before: list[Any]) -> None:
    """Stop what was started since `before`, newest first (a variant's stack before the sink
    that takes its last spans)."""
    for proc in reversed([p for p in group.procs if p not in before]):
        group.stop(proc)


def _block(ctx: Context) -> dict[str, Any]:
    return {"level": ctx.level, "rounds": ctx.rounds, "runs": [], "note": None}


def start_sink(group: ProcessGroup) -> tuple[Proc, dict[str, str]]:
    """The OTLP sink, and the environment that makes a Switchboard process trace every request
    and export to it (the endpoint also turns on OTLP metrics, as it would in production)."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks._otlp_sink", "--port", str(port)]
    sink = group.start("otlp-sink", argv, cwd=REPO)
    wait_tcp(port, sink, 30)
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",  # http: no TLS
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    return sink, env


def probe_tracing(ctx: Context) -> dict[str, Any]:
    block = _block(ctx)
    before = list(ctx.group.procs)
    sink = None
    try:
        sink, env = start_sink(ctx.group)
        _compare(ctx, block, "tracing", env, "")
    except PROBE_FAILED as exc:
        if sink is None:  # the harness's own sink: nothing of Switchboard's was tried (N/A)
            block["note"] = (
                f"tracing variant not measured: the OTLP sink did not start ({str(exc)[:300]})"
            )
        else:
            _failed(block, "tracing", exc)
    finally:
        if sink is not None:  # its CPU is on this machine; a real collector's would not be
            block["sink_cpu_s"] = round(cpu_seconds(sink.pids()), 2)
        stop_started_since(ctx.group, before)  # the sink last: it prints its final counts
    if sink is not None:
        with contextlib.suppress(OSError, ValueError):
            block["sink"] = parse_counts(sink.log.read_text(errors="replace"))
    return block


def drop_keys(prefix: str) -> int | None:
    """Delete this run's keys; returns how many there were (None: could not look)."""
    try:
        import redis
    except ImportError:
        return None
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    except redis.RedisError:
        return None
    finally:
        client.close()


def redis_state_yaml(prefix: str) -> str:
    """The router config's `state:` section for the Redis variant."""
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    return f"state: {{backend: redis, url: '{url}', prefix: {prefix}}}\n"


def probe_redis(ctx: Context) -> dict[str, Any]:
    block = _block(ctx)
    problem = redis_problem()
    if problem:
        block["note"] = f"Redis variant skipped: {problem}"
        return block
    # A prefix of this run's own: concurrent runs (and the test suite) share the server.
    prefix = f"bench-{secrets.token_hex(6)}"
    block["prefix"] = prefix
    before = list(ctx.group.procs)
    try:
        _compare(ctx, block, "redis", {}, redis_state_yaml(prefix))
    except PROBE_FAILED as exc:
        _failed(block, "Redis", exc)
    finally:
        stop_started_since(ctx.group, before)
        # keys found prove the router used Redis (it falls back to local state when it cannot)
        block["redis_keys"] = drop_keys(prefix)
    return block


def run_variants(ctx: Context, names: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """Each variant in turn, one stack at a time."""
    probes = {"tracing": probe_tracing, "redis": probe_redis}
    out: dict[str, Any] = {"level": ctx.level, "rounds": ctx.rounds}
    for name in names:
        ctx.say(f"variant probe: {name} vs plain, c={ctx.level}, {ctx.rounds} round(s)")
        out[name] = probes[name](ctx)
        if out[name]["note"]:
            ctx.say(out[name]["note"])
    return out


# ---- report: medians, cost, targets (pure; no process is started) -----------------------------

VARIANT_TARGETS = (  # key in data["variants"], target, highest cost that passes
    ("tracing", "tracing on (100 % sampled, batch export) costs ≤ 15 % of throughput", 0.15),
    ("redis", "the Redis state backend costs ≤ 25 % of throughput against memory", 0.25),
)
_MISSING = "not measured in this run"


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _target(name: str, passed: bool | None, detail: str) -> dict[str, Any]:
    """The shape of `_report.targets()` lines (this module must not import `_report`, which
    imports it)."""
    status = "N/A" if passed is None else ("PASS" if passed else "FAIL")
    return {"target": name, "status": status, "detail": detail}


def variant_cost(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """Median req/s of the plain and of the variant runs, cost = 1 - variant / plain; None when
    either side has no run."""
    runs = (block or {}).get("runs") or []
    plain = _median(r.get("rps") for r in runs if r.get("system") == "plain")
    variant = _median(r.get("rps") for r in runs if r.get("system") == "variant")
    if plain is None or variant is None or plain <= 0:
        return None
    return {
        "plain_rps": plain,
        "variant_rps": variant,
        "cost": 1 - variant / plain,
        "errors": sum(r.get("errors") or 0 for r in runs),
        "other_cores": _median(r.get("other_cores") for r in runs),
    }


def _evidence(key: str, block: dict[str, Any]) -> str:
    """What shows the variant did its extra work (spans exported; keys written to Redis)."""
    if key == "tracing":
        sink = block.get("sink")
        if not sink:
            return "sink counts unknown"
        cpu = block.get("sink_cpu_s")
        used = "" if cpu is None else f" (its CPU: {cpu:g} s)"
        return f"the sink got {sink['trace_requests']:,} exports, {sink['spans']:,} spans{used}"
    keys = block.get("redis_keys")
    return "Redis keys unknown" if keys is None else f"{keys:,} Redis keys under the run's prefix"


def variant_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tracing and Redis targets: PASS/FAIL on the cost (FAIL with errors or a failed
    comparison), N/A when not measured."""
    out = []
    variants = data.get("variants") or {}  # absent in runs from before the probe
    for key, name, limit in VARIANT_TARGETS:
        block = variants.get(key) or {}
        cost = variant_cost(block)
        if cost is None:
            failed = False if block.get("failed") else None  # tried and failed: FAIL
            out.append(_target(name, failed, block.get("note") or _MISSING))
            continue
        detail = (
            f"{cost['variant_rps']:,.0f} vs {cost['plain_rps']:,.0f} req/s plain at "
            f"c={block.get('level')}: cost {cost['cost']:.1%} (limit {limit:.0%}); "
            + _evidence(key, block)
            + (f"; {cost['errors']} errors" if cost["errors"] else "")
        )
        sink = block.get("sink")
        if block.get("failed"):  # the rounds before the failure are no PASS either
            out.append(_target(name, False, f"{detail}; {block['note']}"))
        elif key == "tracing" and sink is not None and not sink.get("trace_requests"):
            # nothing was exported: the run did not measure tracing at all
            out.append(_target(name, None, f"{detail}: tracing was not on"))
        else:  # a failed request is no answer, on either stack: no PASS with errors
            out.append(_target(name, cost["cost"] <= limit and not cost["errors"], detail))
    return out


def _rounds_text(block: dict[str, Any]) -> str:
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for r in block.get("runs") or []:
        by_round[r["round"]][r["system"]] = r["rps"]
    return "; ".join(
        f"{_fmt(v.get('plain'), '{:,.0f}')} / {_fmt(v.get('variant'), '{:,.0f}')}"
        for _, v in sorted(by_round.items())
    )


def variants_markdown(data: dict[str, Any]) -> list[str]:
    """The report's Variants section (none for a run without the probe)."""
    variants = data.get("variants")
    if not variants:
        return []
    lines = [
        "## Variants",
        "",
        f"Non-streaming through the edge at c={variants.get('level')}, the plain stack and the "
        f"variant's in turn, {variants.get('rounds')} rounds; cost = 1 - median variant req/s / "
        "median plain req/s.",
        "",
        "| variant | plain req/s | variant req/s | cost | per round (plain / variant) | errors "
        "| other load | evidence |",
        "|---|--:|--:|--:|---|--:|--:|---|",
    ]
    for key, _, _ in VARIANT_TARGETS:
        block = variants.get(key) or {}
        cost = variant_cost(block) or {}
        lines.append(
            f"| {key} | {_fmt(cost.get('plain_rps'), '{:,.0f}')} "
            f"| {_fmt(cost.get('variant_rps'), '{:,.0f}')} | {_fmt(cost.get('cost'), '{:.1%}')} "
            f"| {_rounds_text(block) or '–'} | {cost.get('errors', '–')} "
            f"| {_fmt(cost.get('other_cores'), '{:.2f}')} "
            f"| {block.get('note') or _evidence(key, block)} |"
        )
    return [*lines, ""]
