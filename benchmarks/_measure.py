"""One measurement at a time: a load run against one system with its CPU cost, the failover
probe, and the idle-streams memory probe. Load always comes from a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._procs import (
    children_cpu_seconds,
    cpu_seconds,
    machine_busy_seconds,
    memory_kib,
)
from benchmarks._systems import FALLBACK_MODEL, IDLE_MODEL, MODEL, REPO, System
from benchmarks._wrk import run_wrk, write_script

PROMPT = [{"role": "user", "content": "Say something short about routers."}]


def chat_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": 64}
    if stream:
        body["stream"] = True
    return body


def py_load(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run the Python load generator process and return its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._load", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class LoadPlan:
    duration_s: float
    warmup_s: float
    wrk: str | None
    tmp: Path
    # every process the harness started (servers), to tell its CPU from other work on the machine
    started_pids: Callable[[], list[int]] = list
    # Before each run, wait while other work keeps more than `quiet_cores` busy, from a budget
    # of `quiet_budget_s` for the whole bench (a shared machine: someone's test suite).
    quiet_cores: float = 0.25
    quiet_budget_s: float = 0.0
    waited_s: float = 0.0
    # How long a run goes on past its window for its first answers (`_load.closed_loop`): a
    # system that answers none is a failed run only after it (tests shorten it).
    late_s: float = 10.0


def other_cores(plan: LoadPlan, seconds: float) -> float:
    """Cores busy with work the harness did not start, over the next `seconds`."""
    ours = plan.started_pids()
    machine0, ours0, children0 = machine_busy_seconds(), cpu_seconds(ours), children_cpu_seconds()
    time.sleep(seconds)
    foreign = (machine_busy_seconds() - machine0) - (cpu_seconds(ours) - ours0)
    return max(0.0, foreign - (children_cpu_seconds() - children0)) / seconds


def wait_for_quiet(plan: LoadPlan) -> float:
    """Seconds waited for the machine to be quiet enough (0 when it was, or no budget is left)."""
    waited = 0.0
    while plan.waited_s + waited < plan.quiet_budget_s:
        if other_cores(plan, 0.5) <= plan.quiet_cores:
            break
        time.sleep(1.0)
        waited += 1.5
    plan.waited_s += waited
    return waited


def load_spec(system: System, stream: bool, concurrency: int, plan: LoadPlan) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "concurrency": concurrency,
        "warmup_s": plan.warmup_s,
        "duration_s": plan.duration_s,
        "late_s": plan.late_s,
        "headers": system.headers,
        "body": chat_body(system.model, stream),
    }
    if system.grpc_target is not None:
        spec.update(kind="grpc", target=system.grpc_target)
    else:
        spec.update(kind="http", url=system.chat_url)
    return spec


def measure(system: System, scenario: str, concurrency: int, plan: LoadPlan) -> dict[str, Any]:
    """One run. `scenario`: `unary` (wrk when available), `stream` or `unary-py` (Python client)."""
    stream = scenario == "stream"
    if not system.alive():  # no run against a process that is gone: it would only time out
        raise RuntimeError(f"{system.name} is not running (before a {scenario} run)")
    waited = wait_for_quiet(plan)
    pids = system.pids()
    ours = plan.started_pids()
    cpu0, ours0 = cpu_seconds(pids), cpu_seconds(ours)
    machine0, children0, wall0 = machine_busy_seconds(), children_cpu_seconds(), time.monotonic()
    if scenario == "unary" and plan.wrk is not None and system.chat_url is not None:
        script = write_script(
            plan.tmp / f"wrk-{system.name}.lua", chat_body(system.model, False), system.headers
        )
        result = run_wrk(plan.wrk, system.chat_url, script, concurrency, plan.duration_s)
        result["client"] = "wrk"
    else:
        spec = load_spec(system, stream, concurrency, plan)
        result = py_load(spec, timeout_s=plan.warmup_s + 4 * plan.duration_s + 120)
        result["client"] = "grpc.aio" if system.grpc_target else "aiohttp"
    cpu = cpu_seconds(pids) - cpu0
    result["cpu_s"] = cpu
    # Cores busy with work that is not the harness's (e.g. a test suite run by someone else).
    foreign = (machine_busy_seconds() - machine0) - (cpu_seconds(ours) - ours0)
    foreign -= children_cpu_seconds() - children0
    result["other_cores"] = max(0.0, foreign) / max(1e-9, time.monotonic() - wall0)
    result["waited_for_quiet_s"] = waited
    total = result["completed_total"]
    result["cpu_s_per_1k"] = cpu / total * 1000 if total else None
    if not system.alive():
        raise RuntimeError(f"{system.name} died during a {scenario} run at c={concurrency}")
    if not result["completed"] and not result["errors"]:  # those in flight are not errors
        raise RuntimeError(
            f"{system.name} answered no request in a {scenario} run at c={concurrency}, and "
            "none failed: it hung (no latency to report; wrk would say a p50 of 0 ms)"
        )
    return result


def warm_up(system: System, plan: LoadPlan) -> None:
    """A few seconds of both kinds of traffic: connection pools, caches, lazy imports."""
    quick = LoadPlan(duration_s=1.0, warmup_s=0.0, wrk=None, tmp=plan.tmp)
    for stream in (False, True):
        spec = load_spec(system, stream, 4, quick)
        spec["min_done"] = 1
        py_load(spec, timeout_s=120)


def failover(
    edge: System, requests: int, rounds: int, plan: LoadPlan, timeout_s: float = 300
) -> dict[str, Any]:
    """c=1 through the edge: `bench` and `bench-fallback` (its first deployment refuses
    connections) in turn, request by request, so drift hits both alike. Extra = fallback p50 -
    plain p50, per round; the report takes the median over rounds. A round whose load
    generator fails or times out is recorded (`failed`) and ends the probe, not the bench."""
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        models = (MODEL, FALLBACK_MODEL) if r % 2 == 0 else (FALLBACK_MODEL, MODEL)
        spec = {
            "kind": "http",
            "url": edge.chat_url,
            "headers": edge.headers,
            "bodies": [chat_body(model, False) for model in models],
            "concurrency": 1,
            "count": 2 * requests,
            "unique": True,  # each request a new conversation: no session avoids `dead` yet
        }
        wait_for_quiet(plan)
        try:
            result = py_load(spec, timeout_s=timeout_s)
        except (RuntimeError, subprocess.SubprocessError) as exc:  # e.g. a fallback that hangs
            failed = f"{type(exc).__name__}: {str(exc)[-500:]}"
            none = {"p50_ms": None, "p99_ms": None}
            rows.append({"round": r, "errors": 0, "error_samples": [], "failed": failed})
            rows[-1] |= {MODEL: none, FALLBACK_MODEL: none, "extra_p50_ms": None}
            break  # the next rounds would only wait as long
        pair: dict[str, Any] = {"round": r, "errors": result["errors"]}
        pair["error_samples"] = result["error_samples"]
        for model, stats in zip(models, result["latency_ms_by_body"], strict=True):
            pair[model] = {"p50_ms": (stats or {}).get("p50"), "p99_ms": (stats or {}).get("p99")}
        plain, fallback = pair[MODEL]["p50_ms"], pair[FALLBACK_MODEL]["p50_ms"]
        pair["extra_p50_ms"] = None if plain is None or fallback is None else fallback - plain
        rows.append(pair)
    return {"requests_per_model": requests, "rounds": rows}


def long_prompt(kib: int) -> list[dict[str, str]]:
    """A conversation whose user message is `kib` KiB of text (ASCII: one byte a character)."""
    text = ("The quick brown fox jumps over the lazy dog. " * (kib * 24))[: kib * 1024]
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]


def idle_streams(edge: System, count: int, settle_s: float = 3.0) -> dict[str, Any]:
    """Open `count` streams through the edge that the upstream then holds idle; the RSS the
    router and edge gained, per stream."""
    with Holding(edge) as hold:
        return hold.open(count, chat_body(IDLE_MODEL, True), settle_s)


def idle_streams_by_prompt(
    edge: System, count: int, prompt_kib: int, settle_s: float = 3.0
) -> dict[str, Any]:
    """`count` idle streams with the bench's short prompt, then, while those stay open (so
    that their memory cannot be reused), `count` with a prompt of `prompt_kib` KiB each; the
    cost per stream of each, and the RSS each KiB of prompt adds to a stream: the copies a
    stream keeps, plus what the transient ones made while streams open left in the heap."""
    long_body = chat_body(IDLE_MODEL, True)
    long_body["messages"] = long_prompt(prompt_kib)
    with Holding(edge) as hold:
        short = hold.open(count, chat_body(IDLE_MODEL, True), settle_s)
        long = hold.open(count, long_body, settle_s)
    per_prompt_kib = None
    if short["kib_per_stream"] is not None and long["kib_per_stream"] is not None:
        per_prompt_kib = (long["kib_per_stream"] - short["kib_per_stream"]) / prompt_kib
    return {
        "prompt_kib": prompt_kib,
        "short": short,
        "long": long,
        "rss_per_prompt_kib": per_prompt_kib,
    }


class Holding:
    """Load generator processes holding streams open until the block ends."""

    def __init__(self, edge: System) -> None:
        self._edge = edge
        self._procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Holding:
        return self

    def open(self, count: int, body: dict[str, Any], settle_s: float) -> dict[str, Any]:
        edge, pids = self._edge, self._edge.pids()
        before = memory_kib(pids, "VmRSS")
        spec = {
            "kind": "hold",
            "url": edge.chat_url,
            "headers": edge.headers,
            "body": body,
            "concurrency": count,
            "open_concurrency": 100,
            "open_timeout_s": 120,
            "max_hold_s": 180,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._load", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self._procs.append(proc)
        assert proc.stdout is not None
        report = json.loads(proc.stdout.readline() or "{}")
        time.sleep(settle_s)
        after = memory_kib(pids, "VmRSS")
        opened = int(report.get("open", 0))
        return {
            "requested": count,
            "opened": opened,
            "failed": report.get("failed"),
            "open_s": report.get("open_s"),
            "error_samples": report.get("error_samples", []),
            "rss_before_kib": before,
            "rss_open_kib": after,
            "hwm_kib": memory_kib(pids, "VmHWM"),
            "kib_per_stream": (after - before) / opened if opened else None,
        }

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()  # the generator lets its streams go at the end of its input
        for proc in self._procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
