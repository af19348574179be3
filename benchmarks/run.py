"""Switchboard vs a direct baseline vs LiteLLM proxy, side by side on this machine.

    python -m benchmarks.run [--quick] [--levels 1,16,64,256] [--duration S] [--no-peer]

Starts the fast fake upstream, Switchboard (router + edge), and LiteLLM proxy (installed into
benchmarks/.peer-venv at a pinned version) as subprocesses on free loopback ports; runs fixed
concurrency levels, non-streaming and streaming, alternating the systems run by run; then the
failover probe, the variants probe (tracing on, Redis state: each a second stack against the
plain one) and the idle-streams probe. Writes benchmarks/results/latest.{json,md,png}. Every
process it starts is stopped on exit; all traffic goes to 127.0.0.1; every run is bounded in time.
Switchboard and LiteLLM run from virtualenvs made from one interpreter: this one, or the path in
`BENCH_PYTHON` (see `_venv.py`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import _render, _source, _venv
from benchmarks._measure import (
    LoadPlan,
    failover,
    idle_streams,
    idle_streams_by_prompt,
    measure,
    warm_up,
)
from benchmarks._peer import PEER_VERSION, PeerUnavailable, ensure_peer
from benchmarks._procs import ProcessGroup, memory_kib, sigterm_as_interrupt
from benchmarks._systems import System, start_peer, start_switchboard, start_upstream
from benchmarks._variants import (
    PROBE_FAILED,
    VARIANT_LEVEL,
    Context,
    run_variants,
    stop_started_since,
)
from benchmarks._wrk import find_wrk

RESULTS = Path(__file__).resolve().parent / "results"

# scenario → the systems it runs, in their first-round order (rotated each round)
SCENARIOS = {
    "unary": ("direct", "switchboard", "litellm", "switchboard-1p"),
    "stream": ("direct", "switchboard", "litellm", "switchboard-grpc", "switchboard-1p"),
    "unary-py": ("direct", "switchboard-grpc"),  # the gRPC path's baseline: same-language client
}


def _levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    if not levels or any(n < 1 or n > 4096 for n in levels):
        raise argparse.ArgumentTypeError("levels are integers between 1 and 4096")
    return levels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: levels 1,16; short runs")
    p.add_argument("--levels", type=_levels, help="concurrency levels (default 1,16,64,256)")
    p.add_argument("--duration", type=float, help="measured seconds per run (default 4; quick 2)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds per run (default 1; quick 0.5)")
    p.add_argument(
        "--rounds", type=int, help="rounds of alternation per level (default 3; quick 1)"
    )
    p.add_argument("--no-peer", action="store_true", help="leave LiteLLM out")
    p.add_argument("--one-process", action="store_true", help="also `switchboard serve`")
    p.add_argument(
        "--peer-workers",
        type=int,
        default=1,
        help="LiteLLM --num_workers (default 1: Switchboard's edge runs one worker process)",
    )
    p.add_argument("--idle-streams", type=int, help="idle streams to open (default 2000)")
    p.add_argument(
        "--idle-prompt-kib",
        type=int,
        default=32,
        help="then, on a new stack, 500 idle streams with the short prompt and 500 more with a "
        "prompt of this many KiB each (0: not measured)",
    )
    p.add_argument("--failover-requests", type=int, help="requests per model and round (300)")
    p.add_argument("--no-wrk", action="store_true", help="Python client for non-streaming too")
    p.add_argument(
        "--no-variants", action="store_true", help="skip the tracing and Redis variants probe"
    )
    p.add_argument(
        "--variant-level",
        type=int,
        default=VARIANT_LEVEL,
        help=f"concurrency of the variants probe (default {VARIANT_LEVEL})",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds in all that runs may wait for other work on the machine to calm down "
        "(default 300; quick 30; 0: never wait)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--report", type=Path, help="only render the report from a run's JSON file")
    _source.add_arguments(p)
    args = p.parse_args(argv)
    args.out = args.out.resolve()  # subprocesses run from other directories
    quick = args.quick
    args.levels = args.levels or ([1, 16] if quick else [1, 16, 64, 256])
    args.duration = args.duration or (2.0 if quick else 4.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if quick else 1.0)
    args.rounds = args.rounds or (1 if quick else 3)
    args.idle_streams = args.idle_streams or 2000
    if args.quiet_wait is None:
        args.quiet_wait = 30.0 if quick else 300.0
    args.failover_requests = args.failover_requests or (100 if quick else 300)
    # the variants' cost is a ratio of medians over noisy rounds: at least 5 (2 in a smoke run)
    args.variant_rounds = max(2 if quick else 5, args.rounds)
    return args


def _say(text: str) -> None:
    print(f"bench: {text}", flush=True)


def _brief(result: dict[str, Any]) -> str:
    lat = result.get("latency_ms") or {}
    ttft = result.get("ttft_ms") or {}
    parts = [f"{result['rps']:8.1f} req/s", f"p50 {lat.get('p50', float('nan')):7.2f} ms"]
    if ttft:
        parts += [f"ttft {ttft['p50']:7.2f} ms", f"{result['chunks_per_s']:8.0f} chunks/s"]
    if result["errors"]:
        parts.append(f"{result['errors']} errors")
    return ", ".join(parts)


@dataclass
class Matrix:
    """The load matrix's results: every run, each system's peak RSS (VmHWM, KiB) after each
    level, and the runs that failed (after its process is gone a system is left out: its runs
    are failures marked `left_out`)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    peaks: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)


def run_matrix(systems: dict[str, System], args: argparse.Namespace, plan: LoadPlan) -> Matrix:
    """Every level, round and scenario, each system in turn (the order rotated per round)."""
    matrix = Matrix()
    gone: set[str] = set()  # systems whose process has exited: failed once, then left out
    for level in args.levels:
        for rnd in range(args.rounds):
            for scenario, names in SCENARIOS.items():
                present = [n for n in names if n in systems]
                shift = rnd % len(present) if present else 0
                for name in present[shift:] + present[:shift]:
                    where = {"scenario": scenario, "system": name, "level": level, "round": rnd}
                    if name in gone:  # not tried, and a failed run: no target is 'not measured'
                        error = f"left out: {name} is not running"
                        matrix.failures.append({**where, "error": error, "left_out": True})
                        continue
                    try:
                        result = measure(systems[name], scenario, level, plan)
                    # one system's failure does not end the bench
                    except (RuntimeError, subprocess.SubprocessError) as exc:
                        matrix.failures.append({**where, "error": str(exc)[-1500:]})
                        if not systems[name].alive():
                            gone.add(name)
                        _say(f"c={level:<4} r{rnd} {scenario:<8} {name:<17} FAILED: {exc}")
                        continue
                    matrix.runs.append({**where, **result})
                    _say(f"c={level:<4} r{rnd} {scenario:<8} {name:<17} {_brief(result)}")
        for name, hwm in peak_rss(systems).items():
            matrix.peaks.setdefault(name, {})[str(level)] = hwm
    return matrix


# the systems whose idle and peak RSS the report shows
MEMORY_SYSTEMS = ("switchboard", "switchboard-1p", "litellm")


def peak_rss(systems: dict[str, System]) -> dict[str, int]:
    """VmHWM (KiB, summed over its processes) of each of MEMORY_SYSTEMS that runs; none of a
    system whose process is gone (it would read as 0 KiB)."""
    return {
        name: memory_kib(systems[name].pids(), "VmHWM")
        for name in MEMORY_SYSTEMS
        if name in systems and systems[name].alive()
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:  # render the report again from a run's JSON
        saved = json.loads(args.report.read_text())
        print(_render.write_all(saved, args.out)["markdown"])
        return 0
    started = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    tmp = args.out / "tmp" / stamp
    tmp.mkdir(parents=True, exist_ok=True)
    wrk = None if args.no_wrk else find_wrk(install=True)
    _say(f"levels {args.levels}, {args.duration:g}s runs, {args.rounds} round(s); logs in {tmp}")
    if wrk is None:
        _say("wrk is not available: non-streaming load comes from the Python client")
    with sigterm_as_interrupt(), ProcessGroup(tmp) as group:
        data = run_bench(args, group, tmp, wrk, stamp)
    data["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    report = _render.write_all(data, args.out)
    print(report["markdown"])
    _say(f"wrote {', '.join(str(p) for p in report['files'])}")
    return 0


@dataclass
class Bench:
    """What the steps after start-up share."""

    args: argparse.Namespace
    group: ProcessGroup
    tmp: Path  # this run's logs and generated configs
    src: Path  # where Switchboard runs from (work tree or snapshot)
    upstream: str  # the mock's OpenAI base URL
    plan: LoadPlan


def run_bench(
    args: argparse.Namespace, group: ProcessGroup, tmp: Path, wrk: str | None, stamp: str
) -> dict[str, Any]:
    """Start every system, measure it, and return the run's raw data (`elapsed_s` still None)."""
    src, source_label = _source.resolve(args, tmp)
    _say(f"Switchboard from {src} ({source_label})")
    systems, upstream, peer_note = start_systems(group, args, tmp, src)
    plan = LoadPlan(
        duration_s=args.duration,
        warmup_s=args.warmup,
        wrk=wrk,
        tmp=tmp,
        started_pids=lambda: [pid for proc in group.procs for pid in proc.pids()],
        quiet_budget_s=args.quiet_wait,
    )
    idle = idle_rss_after_warm_up(systems, plan)
    matrix = run_matrix(systems, args, plan)
    peak = peak_rss(systems)
    bench = Bench(args, group, tmp, src, upstream, plan)
    probes = run_probes(bench, systems["switchboard"])
    meta = run_meta(bench, stamp, source_label, peer_note, with_peer="litellm" in systems)
    return {
        "meta": meta,
        "idle_rss_kib": idle,
        "peak_rss_kib": peak,
        "peak_rss_kib_by_level": matrix.peaks,
        "runs": matrix.runs,
        "failures": matrix.failures,
        **probes,
    }


def run_meta(
    bench: Bench, stamp: str, source_label: str, peer_note: str | None, *, with_peer: bool
) -> dict[str, Any]:
    """How the run was made; read after the probes (`waited_for_quiet_s` counts theirs too)."""
    args = bench.args
    return {
        "date": stamp,
        "commit": source_label,
        "python": _venv.describe_python(),
        "cpus": _cpu_count(),
        "peer": f"litellm {PEER_VERSION}" if with_peer else None,
        "peer_workers": args.peer_workers,
        "peer_note": peer_note,
        "levels": args.levels,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "quick": args.quick,
        "unary_client": "wrk" if bench.plan.wrk else "aiohttp",
        "waited_for_quiet_s": round(bench.plan.waited_s, 1),
        "elapsed_s": None,
    }


def start_systems(
    group: ProcessGroup, args: argparse.Namespace, tmp: Path, src: Path
) -> tuple[dict[str, System], str, str | None]:
    """direct, switchboard and switchboard-grpc, then litellm unless it is left out or cannot
    start; returns them by name, the mock's OpenAI base URL and why LiteLLM is missing."""
    direct, upstream = start_upstream(group)
    sb_http, sb_grpc = start_switchboard(group, upstream, tmp, src)
    systems = {s.name: s for s in (direct, sb_http, sb_grpc)}
    if args.one_process:
        systems["switchboard-1p"] = start_switchboard(group, upstream, tmp, src, one_process=True)[
            0
        ]
    peer_note: str | None = None
    if args.no_peer:
        peer_note = "LiteLLM left out (--no-peer)"
    else:
        try:
            peer = ensure_peer()
            systems["litellm"] = start_peer(group, peer, upstream, tmp, args.peer_workers)
        except (PeerUnavailable, RuntimeError) as exc:
            peer_note = f"LiteLLM skipped: {exc}"
    if peer_note:
        _say(peer_note)
    return systems, upstream, peer_note


def idle_rss_after_warm_up(systems: dict[str, System], plan: LoadPlan) -> dict[str, int]:
    """VmRSS (KiB) of each system after a warm-up and a second's rest, before any load."""
    for system in systems.values():
        if system.name != "switchboard-grpc":
            warm_up(system, plan)
    time.sleep(1.0)
    idle = {
        "switchboard": memory_kib(systems["switchboard"].pids(), "VmRSS"),
        "switchboard-router": memory_kib(systems["switchboard-grpc"].pids(), "VmRSS"),
    }
    for other in ("litellm", "switchboard-1p"):
        if other in systems:
            idle[other] = memory_kib(systems[other].pids(), "VmRSS")
    _say(f"idle RSS (KiB): {idle}")
    return idle


def run_probes(bench: Bench, switchboard: System) -> dict[str, Any]:
    """The probes after the load matrix, in this order: failover, variants, idle streams, idle
    streams with long prompts. Returns their results under their keys in the JSON."""
    args = bench.args
    _say("failover probe: a deployment that refuses connections, then the fallback")
    fail = failover(switchboard, args.failover_requests, max(3, args.rounds), bench.plan)
    variants = None
    if not args.no_variants:  # before the idle streams: their stacks are gone by then
        level, rounds = args.variant_level, args.variant_rounds
        ctx = Context(
            bench.group, bench.upstream, bench.tmp, bench.src, bench.plan, level, rounds, _say
        )
        variants = run_variants(ctx)
    _say(f"idle streams probe: {args.idle_streams} streams through the edge")
    streams = idle_streams(switchboard, args.idle_streams)
    _say(f"idle streams: {streams['opened']} open, {streams['kib_per_stream']} KiB each")
    long_streams = None
    if args.idle_prompt_kib:
        long_streams = long_prompt_probe(bench, args.idle_prompt_kib)
    return {
        "failover": fail,
        "idle_streams": streams,
        "idle_streams_long_prompt": long_streams,  # None: --idle-prompt-kib 0
        "variants": variants,  # None: --no-variants
    }


def long_prompt_probe(bench: Bench, kib: int) -> dict[str, Any]:
    """500 idle streams with the short prompt, then 500 with a prompt of `kib` KiB each; a
    stack that fails to start or to warm up is said (`failed`), not the end of the bench."""
    _say(f"idle streams probe: 500 short prompts, then 500 of {kib} KiB (a new stack)")
    # A stack of its own: the memory the first probe's streams freed would be reused
    # by these and hide their cost.
    before = list(bench.group.procs)
    try:
        fresh, _ = start_switchboard(
            bench.group, bench.upstream, bench.tmp, bench.src, variant="long-prompt"
        )
        warm_up(fresh, bench.plan)
        long_streams = idle_streams_by_prompt(fresh, 500, kib)
    except PROBE_FAILED as exc:
        failed = f"{type(exc).__name__}: {str(exc)[:300]}"
        _say(f"idle streams ({kib} KiB prompts) failed: {failed}")
        return {"prompt_kib": kib, "failed": failed, "rss_per_prompt_kib": None}
    finally:
        stop_started_since(bench.group, before)
    ratio = long_streams["rss_per_prompt_kib"]
    _say(f"idle streams ({kib} KiB prompts): a KiB of prompt adds {ratio} KiB a stream")
    return long_streams


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started is stopped", file=sys.stderr)
        sys.exit(130)
