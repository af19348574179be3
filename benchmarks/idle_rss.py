"""Idle RSS of router + edge, A/B: `python -m benchmarks.idle_rss [--rounds N] REV [REV ...]`.

What `make bench` reports as idle RSS, without the rest of the bench: for each tree (a git
revision, as `--snapshot` takes it, or `.` for the work tree) a bench stack (`_systems.py`'s
router + edge in front of the fast fake upstream) is started, warmed with 100 unary and 100
streamed calls at c=4, left a second, and the VmRSS of both processes read; then stopped. The
trees take turns, `--rounds` stacks each (default 2), so drift on a shared machine hits all of
them alike. Prints one line per stack and a summary; no file is written. `--one-process`: each
stack is `switchboard serve` (router and edge in one process), whose whole RSS is printed as
the router's.

Bytecode is written (PYTHONDONTWRITEBYTECODE is dropped, and each tree runs one unmeasured stack
first): a process that compiles its modules from source keeps the compiler's garbage in its
heap, which no installed Switchboard does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _source
from benchmarks._measure import chat_body, py_load
from benchmarks._procs import ProcessGroup, memory_kib, sigterm_as_interrupt
from benchmarks._systems import System, start_switchboard, start_upstream

WARM_CALLS = 100  # of each kind, unary and streamed


def warm_spec(system: System, stream: bool) -> dict[str, Any]:
    """The load generator's spec for one kind of the warm-up's calls."""
    return {
        "kind": "http",
        "url": system.chat_url,
        "headers": system.headers,
        "body": chat_body(system.model, stream),
        "concurrency": 4,
        "count": WARM_CALLS,
    }


def idle_mib(
    group: ProcessGroup, upstream: str, src: Path, tmp: Path, one_process: bool = False
) -> tuple[float, float]:
    """(router, edge) VmRSS in MiB of a fresh stack from `src` after the warm-up (one process:
    its RSS, 0)."""
    http, grpc = start_switchboard(group, upstream, tmp, src, one_process=one_process)
    try:
        for stream in (False, True):
            py_load(warm_spec(http, stream), timeout_s=120)
        time.sleep(1.0)
        router = memory_kib(grpc.pids(), "VmRSS") / 1024
        return router, memory_kib(http.pids(), "VmRSS") / 1024 - router
    finally:
        for proc in http.procs:
            group.stop(proc)


def tree(rev: str, tmp: Path) -> tuple[Path, str]:
    """(source directory, label) of `rev`: `git archive` of it, or the work tree for `.`."""
    snapshot = None if rev == "." else rev
    return _source.resolve(argparse.Namespace(snapshot=snapshot, switchboard_src=None), tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_rss", description=__doc__)
    parser.add_argument("revs", nargs="+", metavar="REV", help="a git revision, or . (work tree)")
    parser.add_argument("--rounds", type=int, default=2, help="stacks per tree (default 2)")
    parser.add_argument("--one-process", action="store_true", help="`switchboard serve` stacks")
    args = parser.parse_args(argv)
    one = args.one_process
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the stacks inherit the environment
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-idle-rss-"))
    trees = [tree(rev, tmp) for rev in args.revs]
    figures: dict[str, list[tuple[float, float]]] = {label: [] for _, label in trees}
    with sigterm_as_interrupt(), ProcessGroup(tmp / "logs") as group:
        _, upstream = start_upstream(group)
        for src, _ in trees:
            idle_mib(group, upstream, src, tmp, one)  # unmeasured: writes the tree's bytecode
        for turn in range(args.rounds):
            for src, label in trees if turn % 2 == 0 else trees[::-1]:
                router, edge = idle_mib(group, upstream, src, tmp, one)
                figures[label].append((router, edge))
                together = router + edge
                print(f"{label}: router {router:.1f}, edge {edge:.1f}, together {together:.1f} MiB")
    for label, rows in figures.items():
        stacks = " / ".join(f"{r:.1f} + {e:.1f} = {r + e:.1f}" for r, e in rows)
        print(f"{label}: {stacks} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
