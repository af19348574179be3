"""The upstream event-stream parser, in process: `python -m benchmarks.sse_parse [--mib N]`.

Feeds a stream to `router_service.providers._sse.SseDecoder` (its `feed`, as the response's
reads would, no socket) and prints:

- **long**: one event of N MiB (16, `http.max_event_bytes`' default) cut into 1 KiB reads, then
  its blank line: milliseconds for the event. A parser that keeps the unfinished line as the
  pieces it came in costs about one copy of it; one that re-joins it to each read copies it
  once per read (quadratic: ~128 GiB of copying for 16 MiB in 1 KiB reads, minutes of CPU).
- **stream**: the common path: a 200-event chat stream (OpenAI's chunk JSON), one event per
  read and all of it in one read: microseconds per event.

A few seconds; no servers. Best of `--rounds` runs.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.resp_parse import cut
from router_service.providers._sse import SseDecoder

_EVENT = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"word %d"},"finish_reason":null}]}\n\n'
)
_STREAM_EVENTS = 200


def _seconds(reads: list[bytes], events: int, rounds: int) -> float:
    """Best time of `rounds` to parse `reads` into `events` events on a fresh decoder."""
    best = float("inf")
    for _ in range(rounds):
        decoder = SseDecoder(limit=len(b"".join(reads)))
        feed = decoder.feed
        got = 0
        started = time.perf_counter()
        for data in reads:
            got += len(feed(data))
        got += len(decoder.close())
        best = min(best, time.perf_counter() - started)
        assert got == events, f"{got} events parsed, not {events}"
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="the long event's size")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many")
    args = parser.parse_args()
    line = b"data: " + b"x" * (args.mib << 20)
    reads = [*cut(line, -(-len(line) // 1024)), b"\n\n"]
    ms = _seconds(reads, 1, args.rounds) * 1e3
    print(f"long: one {args.mib} MiB event in {len(reads) - 1:,} reads of 1 KiB  {ms:9.1f} ms")
    stream = [_EVENT % number for number in range(_STREAM_EVENTS)]
    each = _seconds(stream, _STREAM_EVENTS, args.rounds * 100) / _STREAM_EVENTS * 1e6
    whole = _seconds([b"".join(stream)], _STREAM_EVENTS, args.rounds * 100) / _STREAM_EVENTS * 1e6
    print(f"stream: {_STREAM_EVENTS} events, µs per event: one per read {each:5.2f}", end="")
    print(f"   all in one read {whole:5.2f}")


if __name__ == "__main__":
    main()
