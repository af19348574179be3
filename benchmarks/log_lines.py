"""A state-store log's reader, in process: `python -m benchmarks.log_lines [--mib N]`.

Reads a log's document through `router_service.state.DocumentLines` (its `more`, as a follower
of a background response's events does) on the in-memory store, no Redis, and prints:

- **long**: one line of N MiB (16 by default), read `READ_BYTES` (256 KiB) at a time:
  milliseconds for the line. A reader that holds the unfinished line as the pieces it read
  costs about one copy of it; one that re-joins it at every read copies it once per read
  (quadratic: ~2 GiB of copying for 16 MiB).
- **short**: the common path: 10,000 lines of 100 bytes, appended 10 at a time and each batch
  read as it comes: microseconds per line.

A few seconds; no servers. Best of `--rounds` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from router_service.clock import ManualClock
from router_service.state import READ_BYTES, DocumentLines, MemoryStateStore

_SHORT_LINES, _BATCH = 10_000, 10


async def _long(mib: int) -> float:
    store = MemoryStateStore(ManualClock(), document_bytes=(mib + 1) << 20)
    line = b"x" * (mib << 20)
    await store.put_document("log", line + b"\n", 600)
    lines = DocumentLines(store, "log")
    got: list[bytes] = []
    started = time.perf_counter()
    while not got:
        got = await lines.more() or []
    took = time.perf_counter() - started
    assert got == [line]
    return took


async def _short() -> float:
    store = MemoryStateStore(ManualClock())
    await store.put_document("log", b"", 600)
    lines = DocumentLines(store, "log")
    batch = (b"y" * 99 + b"\n") * _BATCH
    started, got = time.perf_counter(), 0
    for _ in range(_SHORT_LINES // _BATCH):
        await store.append_document("log", batch, max_bytes=1 << 30)
        got += len(await lines.more() or [])
    assert got == _SHORT_LINES
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="the long line's size")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many")
    args = parser.parse_args()
    long = min(asyncio.run(_long(args.mib)) for _ in range(args.rounds)) * 1e3
    reads = -(-(args.mib << 20) // READ_BYTES)
    print(
        f"long: one {args.mib} MiB line in {reads:,} reads of {READ_BYTES >> 10} KiB {long:9.1f} ms"
    )
    short = min(asyncio.run(_short()) for _ in range(args.rounds)) / _SHORT_LINES * 1e6
    print(f"short: {_SHORT_LINES:,} lines of 100 bytes, {_BATCH} a read: {short:5.2f} µs per line")


if __name__ == "__main__":
    main()
