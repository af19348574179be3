"""Run a Switchboard process under tracemalloc, answering SIGUSR2 with a memory report
(`benchmarks.stream_memory` starts router and edge through it).

    python -m benchmarks._memtrace OUT FRAMES [--collect] -- <python> -m router_service <args...>

The command after `--` is what the harness would have run; its interpreter is replaced by this
one (the module runs here, in-process, so that tracemalloc sees it). On each SIGUSR2 the process
writes `OUT.<n>.txt`: the object count by type, and from the second signal on the traced
growth since the previous one, attributed to the innermost frame of Switchboard's own code on
each allocation's stack (`router_service/`, `http_edge/`, `clients/`), then `OUT.<n>.done`.
With `--collect` a full garbage collection runs first, so that what is counted is what is still
referenced (`benchmarks.soak` looks for leaks; the servers collect the oldest generation rarely,
see `run_server_loop`, and garbage in cycles would look like growth).
"""

from __future__ import annotations

import collections
import gc
import runpy
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType

_OURS = ("/router_service/", "/http_edge/", "/clients/")
_ENTRY = "router_service/cli.py"  # where every process's event loop runs


def _ours(filename: str) -> str | None:
    """`router_service/...` for a file of ours, None for anything else."""
    if "site-packages" in filename:
        return None
    for package in _OURS:
        at = filename.find(package)
        if at >= 0:
            return filename[at + 1 :]
    return None


class _Reporter:
    def __init__(self, out: str, collect: bool) -> None:
        self.out = out
        self.collect = collect
        self.count = 0
        self.previous: tracemalloc.Snapshot | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.collect:
            gc.collect()
        path = Path(f"{self.out}.{self.count}.txt")
        lines = self._objects()
        snapshot = tracemalloc.take_snapshot()
        if self.previous is not None:
            lines += self._growth(snapshot, self.previous)
        self.previous = snapshot
        path.write_text("\n".join(lines) + "\n")
        Path(f"{self.out}.{self.count}.done").touch()

    @staticmethod
    def _objects() -> list[str]:
        counts = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
        )
        lines = [f"objects {sum(counts.values())}"]
        lines += [f"  {n:9d} {name}" for name, n in counts.most_common(40)]
        return lines

    @staticmethod
    def _growth(now: tracemalloc.Snapshot, before: tracemalloc.Snapshot) -> list[str]:
        by_frame: collections.Counter[str] = collections.Counter()
        for diff in now.compare_to(before, "traceback"):
            frames = list(diff.traceback)[::-1]  # most recent first
            ours = next((f for f in frames if _ours(f.filename) is not None), None)
            where = ours or frames[0]
            name = _ours(where.filename)
            if name is None:
                key = f"(library) {where.filename.rsplit('/', 1)[-1]}:{where.lineno}"
            elif name == _ENTRY:  # only the loop's entry: grpc's, uvloop's C callbacks made it
                key = "(no frame of ours: made in C callbacks, grpc's and uvloop's)"
            else:
                key = f"{name}:{where.lineno}"
            by_frame[key] += diff.size_diff
        total = sum(by_frame.values())
        lines = [f"traced growth {total / 1024:.0f} KiB", "by the innermost frame of ours:"]
        lines += [f"  {size / 1024:9.0f} KiB  {key}" for key, size in by_frame.most_common(40)]
        return lines


def read_report(out: Path, name: str, count: int, wait_s: float = 600.0) -> str:
    """Report number `count` of process `name` (run with OUT = `{out}-{name}`), once written."""
    done = Path(f"{out}-{name}.{count}.done")
    deadline = time.monotonic() + wait_s
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no memory report from the {name} after {wait_s:.0f} s")
        time.sleep(0.5)
    return Path(f"{out}-{name}.{count}.txt").read_text()


def main(argv: list[str]) -> None:
    out, frames, *rest = argv
    collect = rest[:1] == ["--collect"]
    sep, *command = rest[1:] if collect else rest
    if sep != "--" or len(command) < 3 or command[1] != "-m":
        raise SystemExit(
            "usage: python -m benchmarks._memtrace OUT FRAMES [--collect] -- <python> -m MOD ..."
        )
    module, args = command[2], command[3:]
    tracemalloc.start(int(frames))
    signal.signal(signal.SIGUSR2, _Reporter(out, collect))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
