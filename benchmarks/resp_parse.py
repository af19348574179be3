"""The Redis client's reply parsing, in process: `python -m benchmarks.resp_parse [--elements N]`.

Feeds replies to a connection of `router_service.state._resp` (its `data_received`, as the
socket's reads would, no socket) and prints:

- **large**: one N-element `MGET` reply (100-byte documents, every tenth nil) cut into k equal
  reads, k = 1, 10, 100, 1,000: milliseconds per reply. Parsing that resumes where it stopped
  costs the same whatever k is; one that re-reads the finished elements at each read costs
  about k times more.
- **small**: the common path: one small reply per read (`+OK`, `:1`, a bulk string, a 3-element
  array, each its own read), and 64 of them in one read (a pipeline's): microseconds per reply.

A few seconds; no servers. Best of `--rounds` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from router_service.state._resp import _Connection

SMALL = (b"+OK\r\n", b":1\r\n", b"$5\r\nhello\r\n", b"*3\r\n$1\r\na\r\n:7\r\n$-1\r\n")


def mget_reply(elements: int, size: int = 100) -> bytes:
    """An MGET's reply: `elements` documents of `size` bytes, every tenth one missing."""
    document = b"$%d\r\n%s\r\n" % (size, b"x" * size)
    parts = [b"*%d\r\n" % elements]
    parts += [b"$-1\r\n" if i % 10 == 9 else document for i in range(elements)]
    return b"".join(parts)


def cut(data: bytes, reads: int) -> list[bytes]:
    """`data` in `reads` nearly equal pieces."""
    step = -(-len(data) // reads)
    return [data[i : i + step] for i in range(0, len(data), step)]


def _seconds(reads: list[bytes], replies: int, rounds: int) -> float:
    """Best time of `rounds` to parse `reads` into `replies` replies on a fresh connection."""
    best = float("inf")
    for _ in range(rounds):
        got: list[Any] = []
        connection = _Connection(timeout_s=1.0)
        connection.on_push = got.append  # nobody waits: every reply is a push
        feed: Callable[[bytes], None] = connection.data_received
        started = time.perf_counter()
        for data in reads:
            feed(data)
        best = min(best, time.perf_counter() - started)
        assert len(got) == replies and connection.broken is None, "not parsed"
        connection.close()
    return best


async def _main(elements: int, rounds: int) -> None:
    reply = mget_reply(elements)
    print(f"large: one {elements}-element MGET reply, {len(reply):,} bytes")
    for reads in (1, 10, 100, 1000):
        ms = _seconds(cut(reply, reads), 1, rounds) * 1e3
        print(f"  {reads:5} reads  {ms:9.2f} ms/reply")
    print("small: microseconds per reply")
    count = 20_000
    for data in SMALL:
        one_each = _seconds([data] * count, count, rounds) / count * 1e6
        batched = _seconds([data * 64] * (count // 64), count // 64 * 64, rounds)
        print(
            f"  {data!r:42} one per read {one_each:5.2f}   64 per read"
            f" {batched / (count // 64 * 64) * 1e6:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="best of this many")
    args = parser.parse_args()
    asyncio.run(_main(args.elements, args.rounds))


if __name__ == "__main__":
    main()
