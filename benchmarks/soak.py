"""Slow leaks that per-request tests cannot see: `python -m benchmarks.soak [--minutes N]`.

Starts the fault-injecting fake upstream, a router and an edge as real processes (as `make bench`
does, `_systems.py`), drives a mixed load at them for `--minutes` from two load processes
(`_soak_load.py`: HTTP through the edge, gRPC to the router: unary and streamed chats, streams
the client leaves, deadlines that expire, embeddings, many sessions and users, client keys over
their rpm limit) while the upstream answers some deployments with 429 + Retry-After, 503,
stalls before the first byte and mid-stream, truncated streams and connection resets, and one
key with invalid-key errors that disable it until its probe passes (and again once the
upstream's rule is used up, looked at every `--rearm` seconds). Every `--interval` it samples
each process (`_soak_sample.py`) and prints a row; at the end, per figure, its start, end and
slope over the second half (the first is warm-up) and whether it stays flat within a tolerance
(`_trend.py`), and whether streams, leases, descriptors and threads are back at rest once the
load stopped. `--trace` runs router and edge under tracemalloc (`_memtrace.py`) and prints
what grew between the middle and the end (RSS then says nothing: tracing costs memory).
`--state redis` keeps the router's state on the local Redis (and samples Redis itself),
`--tracing` exports every span to an OTLP sink (and samples what it received): see
`_soak_backends.py`.

The config keeps every TTL short (sessions' sticky 30 s, thread protection 20 s, cooldowns
2 s, probes 2-8 s, cached answers 20 s, conversations 30 s): state that lives as long as its
TTL then reaches its steady size within the run, and whatever still grows in the second half
outlives what it was kept for. The deployments have prices, and two clients money budgets (one
never reached, one spent early); part of the models are cached (`CACHED_MODELS`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._memtrace import read_report
from benchmarks._procs import Proc, ProcessGroup, free_port, sigterm_as_interrupt
from benchmarks._soak_backends import Backends, backend_lines, backends
from benchmarks._soak_config import (
    BAD_KEY,
    BAD_KEY_RULE,
    CLIENTS,
    SCENARIOS,
    soak_config,
)
from benchmarks._soak_load import ACTIONS, actions_for
from benchmarks._soak_sample import (
    Probe,
    Sample,
    report,
    sample,
    table,
)
from benchmarks._systems import REPO, start_switchboard, start_upstream

RESULTS = Path(__file__).resolve().parent / "results" / "tmp"
# Shown, not judged: the fake upstream is the harness's tool, and it keeps its last 10,000
# calls for tests to inspect (`FakeUpstreamState.records`): its RSS grows until they are full.
NOT_JUDGED = ("upstream",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=5.0, help="load duration (default 5)")
    p.add_argument("--concurrency", type=int, default=12, help="requests in flight, all kinds")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--rearm", type=float, default=20.0, help="seconds between invalid-key bouts")
    p.add_argument("--settle", type=float, default=5.0, help="seconds at rest before the last look")
    p.add_argument("--trace", action="store_true", help="tracemalloc in router and edge")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--actions",
        type=lambda text: text.split(","),
        default=[],
        help=f"only these kinds of request (of {','.join(ACTIONS)}): which one grows a figure",
    )
    p.add_argument(
        "--transport", choices=["both", "http", "grpc"], default="both", help="load's way in"
    )
    p.add_argument(
        "--state",
        choices=["memory", "redis"],
        default="memory",
        help="the router's state store (redis: 127.0.0.1:6379, a key prefix of the run's own)",
    )
    p.add_argument(
        "--tracing", action="store_true", help="router and edge export every span (OTLP sink)"
    )
    args = p.parse_args(argv)
    if unknown := set(args.actions) - set(ACTIONS):
        p.error(f"--actions: no such action {', '.join(sorted(unknown))}")
    if args.transport != "both" and not actions_for(args.transport, args.actions):
        p.error(f"--actions: none of {','.join(args.actions)} goes over {args.transport}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = RESULTS / f"soak-{time.strftime('%Y%m%dT%H%M%S')}"
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"soak: {args.minutes:g} min at c={args.concurrency}; logs in {tmp}", flush=True)
    try:
        with sigterm_as_interrupt(), ProcessGroup(tmp) as group:
            result = run(args, group, tmp)
    except RuntimeError as exc:  # no Redis, a config that does not load, a process that died
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    (tmp / "soak.json").write_text(json.dumps(result, indent=1))
    samples = [(t, row) for t, row in result["samples"]]
    lines, problems = report(samples, result["after"], NOT_JUDGED)
    print("\n".join([*lines, *backend_lines(result["backends"])]))
    return 1 if problems else 0


def run(args: argparse.Namespace, group: ProcessGroup, tmp: Path) -> dict[str, Any]:
    scenarios = tmp / "scenarios.yaml"
    scenarios.write_text(SCENARIOS)
    upstream_system, upstream = start_upstream(group, scenarios)
    with backends(group, state=args.state, tracing=args.tracing) as extra:
        result = _run_switchboard(args, group, tmp, upstream, upstream_system.procs[0], extra)
    return {**result, "backends": extra.notes}  # notes: taken once router and edge stopped


def _run_switchboard(
    args: argparse.Namespace,
    group: ProcessGroup,
    tmp: Path,
    upstream: str,
    upstream_proc: Proc,
    extra: Backends,
) -> dict[str, Any]:
    metrics_port = free_port()
    trace_out = tmp / "memtrace"

    def launcher(name: str) -> list[str]:
        out = f"{trace_out}-{name}"
        tool = [sys.executable, "-m", "benchmarks._memtrace", out, "12", "--collect", "--"]
        return tool if args.trace else []

    edge, router = start_switchboard(
        group,
        upstream,
        tmp,
        env=extra.env,
        config_text=lambda port: soak_config(upstream, port) + extra.config,
        router_args=["--metrics-port", str(metrics_port)],
        launcher=launcher,
    )
    router_proc, edge_proc = edge.procs
    assert edge.chat_url is not None and router.grpc_target is not None
    edge_base = edge.chat_url.removesuffix("/v1/chat/completions")
    admin_key = CLIENTS["soak-admin"][0]
    probes = {
        "router": Probe(
            router_proc,
            f"http://127.0.0.1:{metrics_port}/metrics",
            requests="switchboard_requests_total",
            gauges={"streams": "switchboard_streams_active", "leases": "switchboard_key_in_flight"},
            admin_target=router.grpc_target,
            admin_key=admin_key,
        ),
        "edge": Probe(
            edge_proc,
            f"{edge_base}/metrics",
            requests="http_server_request_duration_seconds_count",
            gauges={"streams": "switchboard_streams_active"},
        ),
        "upstream": Probe(upstream_proc),
    }

    def sample_all() -> Sample:
        return sample(probes, extra.samplers)

    before = sample_all()
    loads = _start_loads(args, edge_base, router.grpc_target)
    traced = [router_proc, edge_proc]
    samples = _sample_while(loads, probes, sample_all, args, upstream, traced, before)
    outcomes = _finish_loads(loads)
    time.sleep(args.settle)  # streams the load left are noticed gone, leases released
    after = sample_all()
    named = {"router": router_proc, "edge": edge_proc}
    reports = _trace_reports(trace_out, named) if args.trace else {}
    return {"samples": samples, "after": after, "loads": outcomes, "trace": reports}


def _start_loads(args: argparse.Namespace, edge: str, target: str) -> list[subprocess.Popen[str]]:
    clients = [{"key": key, "weight": w} for key, _, w in CLIENTS.values() if w]
    # All of it over one transport when no chosen action goes over the other (the Responses
    # API's alone, the admin calls alone).
    split = max(1, args.concurrency * 2 // 3)
    if not actions_for("grpc", args.actions):
        split = args.concurrency
    elif not actions_for("http", args.actions):
        split = 0
    http = {"both": split, "http": args.concurrency, "grpc": 0}[args.transport]
    common = {"duration_s": args.minutes * 60, "clients": clients, "seed": args.seed}
    common["admin_key"] = CLIENTS["soak-admin"][0]  # PurgeCache, ListClients
    common["actions"] = args.actions
    specs = [
        {**common, "transport": "http", "url": edge, "concurrency": http},
        {**common, "transport": "grpc", "target": target, "concurrency": args.concurrency - http},
    ]
    argv = [sys.executable, "-m", "benchmarks._soak_load"]
    return [
        subprocess.Popen([*argv, json.dumps(spec)], stdout=subprocess.PIPE, text=True, cwd=REPO)
        for spec in specs
        if spec["concurrency"] > 0
    ]


def _sample_while(
    loads: list[subprocess.Popen[str]],
    probes: dict[str, Probe],
    sample_all: Callable[[], Sample],
    args: argparse.Namespace,
    upstream: str,
    traced: list[Proc],
    before: Sample,
) -> list[tuple[float, Sample]]:
    """`before` (t = 0), then a sample (`sample_all`) every `interval` until the loads end; the
    invalid key re-armed (`rearm`); with --trace, the first memory report half-way."""
    started = time.monotonic()
    samples: list[tuple[float, Sample]] = [(0.0, before)]
    print("\n".join(table(samples)), flush=True)
    next_rearm = started
    next_sample = started + args.interval
    halfway = started + args.minutes * 30
    at_half: dict[str, frozenset[str]] = {}
    while any(load.poll() is None for load in loads):
        now = time.monotonic()
        if now >= next_rearm:
            _rearm_bad_key(upstream)
            next_rearm += args.rearm
        if args.trace and now >= halfway:
            halfway = float("inf")
            for proc in traced:
                os.kill(proc.pid, signal.SIGUSR2)
        if now >= next_sample:
            samples.append((round(now - started, 1), sample_all()))
            if not at_half and now >= started + args.minutes * 30:
                at_half = {name: probe.series for name, probe in probes.items()}
            print(table(samples)[-1], flush=True)
            next_sample += args.interval
        time.sleep(0.2)
    for name, probe in probes.items():
        if not probe.proc.alive():
            raise RuntimeError(f"{name} died during the soak:\n{probe.proc.tail()}")
        new = sorted(probe.series - at_half.get(name, probe.series))
        if new:  # what a growing series count is made of
            print(f"{name}: {len(new)} series new in the second half, e.g.", *new[:12], sep="\n  ")
    return samples


def _rearm_bad_key(upstream: str) -> None:
    """The invalid-key rule again once its `times` are used up (the disabling answer and
    failed probes), by which time the key's next probe has passed or is about to."""
    root = upstream.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_fake/scenarios", timeout=10) as response:
        rules = json.loads(response.read())["rules"]
    if any(rule["key"] == BAD_KEY for rule in rules):
        return
    data = json.dumps(BAD_KEY_RULE).encode()
    request = urllib.request.Request(f"{root}/_fake/scenarios", data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _finish_loads(loads: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for load in loads:
        stdout, _ = load.communicate(timeout=120)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"error": f"exit {load.returncode}"}
        for name in ("latency_ms", "ttft_ms", "latency_ms_by_body", "chunks", "chunks_per_s"):
            result.pop(name, None)
        print(f"load: {json.dumps(result)}", flush=True)
        out.append(result)
    return out


def _trace_reports(out: Path, traced: dict[str, Proc]) -> dict[str, str]:
    """The second memory report of router and edge, what grew since the first (half-way),
    with the object counts that changed most between the two."""
    for proc in traced.values():
        os.kill(proc.pid, signal.SIGUSR2)
    reports = {}
    for name in traced:
        first, second = read_report(out, name, 1), read_report(out, name, 2)
        changed = object_growth(first, second)[:15]
        counts = [f"  {delta:+9d} {kind}" for kind, delta in changed]
        reports[name] = "\n".join(["objects that changed most:", *counts, second])
        print(f"\n== {name}: from the middle of the run to its end\n{reports[name]}")
    return reports


def object_growth(first: str, second: str) -> list[tuple[str, int]]:
    """Per type, the change of its object count between two reports (`_memtrace.py`: the
    40 most numerous types of each), largest first."""

    def counts(report: str) -> dict[str, int]:
        found = (line.split() for line in report.splitlines() if line.startswith("  "))
        return {f[1]: int(f[0]) for f in found if len(f) == 2 and f[0].isdigit()}

    before, after = counts(first), counts(second)
    deltas = {k: after.get(k, 0) - before.get(k, 0) for k in before.keys() | after.keys()}
    return sorted(((k, d) for k, d in deltas.items() if d), key=lambda kd: -abs(kd[1]))


if __name__ == "__main__":
    raise SystemExit(main())
