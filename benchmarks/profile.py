"""Profile Switchboard's hot path under load with py-spy: `python -m benchmarks.profile`.

Starts the fast fake upstream and Switchboard (router + edge), then, under load from separate
processes: (1) mixed load (non-streaming via wrk and streaming via the Python client) while py-spy
records a flame graph of the router and of the edge (`results/profile-router.svg`,
`results/profile-edge.svg`); (2) non-streaming only and (3) streaming only, recorded as collapsed
stacks and summarised: the top functions by share of samples, per process
(`results/profile.md`). Needs py-spy (`pip install py-spy`) and ptrace rights (root here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import _source
from benchmarks._measure import LoadPlan, chat_body, load_spec, py_load, warm_up
from benchmarks._procs import ProcessGroup, sigterm_as_interrupt
from benchmarks._systems import System, start_switchboard, start_upstream
from benchmarks._wrk import find_wrk, run_wrk, write_script

RESULTS = Path(__file__).resolve().parent / "results"
# Files whose frames are only the event loop or the process's entry: they say nothing about cost.
_PLUMBING = (
    "(asyncio/base_events.py)",
    "(asyncio/runners.py)",
    "(asyncio/events.py)",
    "(<frozen runpy>)",
    "(router_service/__main__.py)",
    "(router_service/cli.py)",
)


def _load(system: System, plan: LoadPlan, unary: int, stream: int, seconds: float) -> None:
    """Non-streaming (wrk) and/or streaming (Python client) load for `seconds`, in parallel."""
    jobs: list[threading.Thread] = []
    if unary:
        script = write_script(
            plan.tmp / "wrk-profile.lua", chat_body(system.model, False), system.headers
        )
        if plan.wrk is not None:
            jobs.append(
                threading.Thread(
                    target=run_wrk, args=(plan.wrk, system.chat_url, script, unary, seconds)
                )
            )
        else:
            spec = load_spec(system, False, unary, LoadPlan(seconds, 0, None, plan.tmp))
            jobs.append(threading.Thread(target=py_load, args=(spec, seconds + 120)))
    if stream:
        spec = load_spec(system, True, stream, LoadPlan(seconds, 0, None, plan.tmp))
        jobs.append(threading.Thread(target=py_load, args=(spec, seconds + 120)))
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()


def _record(pyspy: str, pid: int, out: Path, seconds: float, raw: bool) -> subprocess.Popen[bytes]:
    argv = [pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "-o", str(out)]
    argv += ["--rate", "200"]
    if raw:
        argv += ["--format", "raw", "--nolineno", "--threads", "--native"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _profiled(
    pyspy: str, targets: dict[str, int], outs: dict[str, Path], seconds: float, raw: bool, load: Any
) -> None:
    spies = {name: _record(pyspy, pid, outs[name], seconds, raw) for name, pid in targets.items()}
    time.sleep(0.5)  # py-spy attaches before the load starts
    load(seconds + 1)
    for name, spy in spies.items():
        _, err = spy.communicate(timeout=60)
        if spy.returncode != 0:
            print(f"profile: py-spy on {name} failed: {err.decode()[-500:]}", file=sys.stderr)


def _is_python(frame: str) -> bool:
    return ".py)" in frame or "<frozen" in frame


def _frame_name(frame: str) -> str:
    # raw frames read `function (path/to/module.py)` or `symbol (library.so)`; shorten the path
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def summarise_raw(path: Path, top: int = 10) -> dict[str, Any]:
    """Shares of the event-loop thread's busy samples (recorded with --threads --native).

    Busy = not waiting in epoll. `self`: the nearest Python function on the stack, so native time
    (syscalls, protobuf, grpc's Cython) counts for the Python function that called it.
    `inclusive`: anywhere on the stack. `native`: the innermost native frame."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    native: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        thread_name = thread.split(": ", 1)[-1]
        threads[thread_name] += count
        if thread_name != "MainThread" or not frames:
            continue
        leaf = frames[-1]
        if leaf.startswith(("epoll_wait", "EpollSelector.select", "select (")):
            idle += count
            continue
        busy += count
        names = [_frame_name(f) for f in frames]
        python = [n for f, n in zip(frames, names, strict=True) if _is_python(f)]
        own[python[-1] if python else names[-1]] += count
        if not _is_python(leaf):
            native[names[-1]] += count
        for name in set(python):
            if not name.endswith(_PLUMBING):
                inclusive[name] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / busy) for name, n in counter.most_common(top)] if busy else []

    total = sum(threads.values())
    return {
        "samples": total,
        "busy": busy,
        "main_busy_share": busy / total if total else 0.0,
        "main_idle_share": idle / total if total else 0.0,
        "threads": {name: n / total for name, n in threads.most_common()} if total else {},
        "self": shares(own),
        "inclusive": shares(inclusive),
        "native": shares(native)[:6],
    }


def _markdown(summaries: dict[tuple[str, str], dict[str, Any]], seconds: float) -> str:
    lines = [
        "# Switchboard hot-path profile (py-spy)",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · {seconds:g} s per recording at 200 Hz "
        "with `--threads --native`. Shares are of the event-loop thread's busy samples (not "
        "waiting in epoll). *self*: the innermost Python function, native callees (syscalls, "
        "protobuf, grpc's Cython) included; *inclusive*: anywhere on the stack.",
        "",
    ]
    for (process, mode), summary in summaries.items():
        threads = ", ".join(f"{name} {share:.0%}" for name, share in summary["threads"].items())
        lines += [
            f"## {process}, {mode}",
            "",
            f"{summary['samples']} samples; threads: {threads}; event loop busy "
            f"{summary['main_busy_share']:.0%}, waiting {summary['main_idle_share']:.0%}.",
            "",
            "| # | self | function | inclusive | function |",
            "|--:|--:|---|--:|---|",
        ]
        for i in range(max(len(summary["self"]), len(summary["inclusive"]))):
            s = summary["self"][i] if i < len(summary["self"]) else ("", 0.0)
            c = summary["inclusive"][i] if i < len(summary["inclusive"]) else ("", 0.0)
            lines.append(f"| {i + 1} | {s[1]:.1%} | `{s[0]}` | {c[1]:.1%} | `{c[0]}` |")
        native = "; ".join(f"`{name}` {share:.1%}" for name, share in summary["native"])
        lines += ["", f"Innermost native frames: {native}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile", description=__doc__.split("\n")[0]
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per recording")
    p.add_argument("--out", type=Path, default=RESULTS)
    _source.add_arguments(p)
    args = p.parse_args(argv)
    args.out = args.out.resolve()  # subprocesses run from other directories
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        print("profile: py-spy is missing: pip install py-spy", file=sys.stderr)
        return 2
    tmp = args.out / "tmp" / ("profile-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    tmp.mkdir(parents=True, exist_ok=True)
    plan = LoadPlan(args.duration, 0.0, find_wrk(install=True), tmp)
    summaries: dict[tuple[str, str], dict[str, Any]] = {}
    with sigterm_as_interrupt(), ProcessGroup(tmp) as group:
        src, label = _source.resolve(args, tmp)
        print(f"profile: Switchboard from {src} ({label})", flush=True)
        _, upstream = start_upstream(group)
        edge, _ = start_switchboard(group, upstream, tmp, src)
        warm_up(edge, plan)
        router_proc, edge_proc = edge.procs
        targets = {"router": router_proc.pid, "edge": edge_proc.pid}
        svgs = {name: args.out / f"profile-{name}.svg" for name in targets}
        print("profile: mixed load, flame graphs", flush=True)
        _profiled(pyspy, targets, svgs, args.duration, False, lambda s: _load(edge, plan, 32, 8, s))
        for mode, unary, stream in (("non-streaming c=64", 64, 0), ("streaming c=16", 0, 16)):
            print(f"profile: {mode}, collapsed stacks", flush=True)
            raws = {name: tmp / f"{name}-{unary or stream}.txt" for name in targets}
            _profiled(
                pyspy,
                targets,
                raws,
                args.duration,
                True,
                lambda s, u=unary, st=stream: _load(edge, plan, u, st, s),
            )
            for name, raw in raws.items():
                if raw.exists():
                    summaries[(name, mode)] = summarise_raw(raw)
    text = _markdown(summaries, args.duration)
    (args.out / "profile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
