"""What an open stream costs, and where it goes: `python -m benchmarks.stream_memory`.

Starts the fast fake upstream and Switchboard (router + edge, as `make bench` does), opens
`--streams` streams through the edge to the model whose upstream sends one chunk and then holds
the stream, and prints the RSS each process gained per stream. With `--trace` router and edge
run under tracemalloc (`_memtrace.py`: slower, and RSS is inflated by the tracing itself): the
Python-heap growth per stream is printed too, attributed to the innermost frame of our code on
each allocation's stack. `--prompt-kib N` gives every stream a prompt of N KiB instead of the
bench's short one (what a stream keeps of its request shows up then). benchmarks/README.md
("Where an idle stream's memory goes") has the figures of 2026-12-03. `--one-process`: router
and edge in one `switchboard serve` process.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from benchmarks._measure import Holding, LoadPlan, chat_body, long_prompt, warm_up
from benchmarks._memtrace import read_report
from benchmarks._procs import ProcessGroup, memory_kib
from benchmarks._systems import IDLE_MODEL, start_switchboard, start_upstream

RESULTS = Path(__file__).resolve().parent / "results" / "tmp"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_memory", description=__doc__)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--prompt-kib", type=int, default=0)
    p.add_argument("--trace", action="store_true", help="tracemalloc attribution (slower)")
    p.add_argument("--frames", type=int, default=12, help="traceback depth with --trace")
    p.add_argument("--one-process", action="store_true", help="`switchboard serve`")
    args = p.parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    tmp = RESULTS / f"stream-memory-{stamp}"
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "memtrace"

    def launcher(name: str) -> list[str]:
        if not args.trace:
            return []
        tool = [sys.executable, "-m", "benchmarks._memtrace"]
        return [*tool, f"{out}-{name}", str(args.frames), "--"]

    body = chat_body(IDLE_MODEL, True)
    if args.prompt_kib:
        body["messages"] = long_prompt(args.prompt_kib)
    with ProcessGroup(tmp) as group:
        _, upstream = start_upstream(group)
        edge, _ = start_switchboard(
            group, upstream, tmp, launcher=launcher, startup_s=400.0, one_process=args.one_process
        )
        warm_up(edge, LoadPlan(duration_s=1.0, warmup_s=0.0, wrk=None, tmp=tmp))
        procs = {proc.name: proc for proc in edge.procs}
        if args.trace:
            for proc in procs.values():
                os.kill(proc.pid, signal.SIGUSR2)
            for name in procs:
                read_report(out, name, 1)
        before = {name: memory_kib(proc.pids(), "VmRSS") for name, proc in procs.items()}
        with Holding(edge) as hold:
            opened = hold.open(args.streams, body, settle_s=3.0)["opened"]
            after = {name: memory_kib(proc.pids(), "VmRSS") for name, proc in procs.items()}
            if args.trace:
                for proc in procs.values():
                    os.kill(proc.pid, signal.SIGUSR2)
                reports = {name: read_report(out, name, 2) for name in procs}
    prompt = f"{args.prompt_kib} KiB prompts" if args.prompt_kib else "the bench's short prompt"
    print(f"{opened} streams open ({prompt}); RSS per stream:")
    for name in procs:
        gained = (after[name] - before[name]) / max(opened, 1)
        rss = f"{before[name] / 1024:.0f} → {after[name] / 1024:.0f} MiB"
        print(f"  {name:8s} {gained:7.1f} KiB  ({rss})")
    if args.trace:
        for name, text in reports.items():
            print(f"\n== {name} (tracemalloc: divide by {opened} for per stream)\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
