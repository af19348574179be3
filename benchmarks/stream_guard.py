"""StreamGuard's cost per chunk, in process: `python -m benchmarks.stream_guard [--chunks N]`.

Relays N chunks through `StreamGuard.follow` and through a bare `async for`, with a caller that
takes one loop turn per chunk (as the gRPC send does), from an upstream whose chunks are already
buffered ("ready") or arrive one loop turn apart ("trickle", a socket read per chunk). Prints
microseconds per chunk and the guard's overhead over the bare loop. A few seconds; no servers.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable

from clients.switchboard.v1 import chat_pb2
from router_service.clock import SYSTEM_CLOCK
from router_service.engine import StreamGuard

Chunk = chat_pb2.ChatCompletionChunk
Source = Callable[[list[Chunk]], AsyncIterator[Chunk]]


def _chunks(n: int) -> list[Chunk]:
    out = []
    for i in range(n):
        chunk = Chunk(id="chatcmpl-bench")
        choice = chunk.choices.add(index=0)
        choice.delta.text = "tok "
        if i == n - 1:
            choice.finish_reason = chat_pb2.FINISH_REASON_STOP
        out.append(chunk)
    return out


async def _ready(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


async def _trickle(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def _per_chunk_us(source: Source, chunks: list[Chunk], guarded: bool) -> float:
    items: AsyncIterator[object] = source(chunks)
    if guarded:
        items = StreamGuard(SYSTEM_CLOCK, stall_s=45, heartbeat_s=15).follow(source(chunks))
    started = time.perf_counter()
    count = 0
    async for _ in items:
        count += 1
        await asyncio.sleep(0)  # the caller's write
    return (time.perf_counter() - started) / count * 1e6


async def _main(n: int, rounds: int) -> None:
    chunks = _chunks(n)
    for name, source in (("ready", _ready), ("trickle", _trickle)):
        bare = min([await _per_chunk_us(source, chunks, False) for _ in range(rounds)])
        guard = min([await _per_chunk_us(source, chunks, True) for _ in range(rounds)])
        print(
            f"{name:8} bare {bare:6.2f} us/chunk   guarded {guard:6.2f} us/chunk"
            f"   overhead {guard - bare:5.2f} us/chunk"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many")
    args = parser.parse_args()
    asyncio.run(_main(args.chunks, args.rounds))


if __name__ == "__main__":
    main()
