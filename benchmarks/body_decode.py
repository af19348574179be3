"""An upstream body's `Content-Encoding` undone in bounded steps, in process:
`python -m benchmarks.body_decode [--kib N]`.

Feeds a compressed chat answer (N KiB of OpenAI's chunk JSON, 1 MiB by default) to
`router_service.providers._bounded_decode.Decoding` (its `pieces`, as the response's reads
would, no socket) in 64 KiB reads, and prints, for gzip and zstd, microseconds of CPU (of the
event loop's time) per KiB decoded and milliseconds per 64 KiB read, next to httpx's own
decoder (one call per read, no bound) for scale. A decoder that feeds zstd a few bytes a step
pays a call per few bytes; one that feeds it a block at a time pays a call per block.

A few seconds; no servers. Best of `--rounds` runs.
"""

from __future__ import annotations

import argparse
import random
import time
import zlib
from collections.abc import Callable

import zstandard
from httpx._decoders import GZipDecoder, ZStandardDecoder

from benchmarks.resp_parse import cut
from router_service.providers._bounded_decode import Decoding

_EVENT = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
)
_WORDS = 5000  # a vocabulary of made-up words: text that compresses about as prose does
_READ = 64 * 1024


def _body(kib: int) -> bytes:
    """`kib` KiB of an event stream, a few random words an event (the same each run)."""
    draw = random.Random(0)
    letters = "etaoinshrdlucmfwypvbgk"
    words = ["".join(draw.choices(letters, k=draw.randint(2, 9))) for _ in range(_WORDS)]
    events, size = [], 0
    while size < kib << 10:
        events.append(_EVENT % " ".join(draw.choices(words, k=draw.randint(5, 40))).encode())
        size += len(events[-1])
    return b"".join(events)


def _gzip(body: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return packer.compress(body) + packer.flush()


def _ours(encoding: str) -> Callable[[list[bytes]], int]:
    def decode(reads: list[bytes]) -> int:
        decoding = Decoding(encoding)
        return sum(len(piece) for data in reads for piece in decoding.pieces(data))

    return decode


def _httpx(encoding: str) -> Callable[[list[bytes]], int]:
    def decode(reads: list[bytes]) -> int:
        decoder = GZipDecoder() if encoding == "gzip" else ZStandardDecoder()
        return sum(len(decoder.decode(data)) for data in reads) + len(decoder.flush())

    return decode


def _us_per_kib(
    decode: Callable[[list[bytes]], int], reads: list[bytes], size: int, rounds: int
) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        got = decode(reads)
        best = min(best, time.perf_counter() - started)
        assert got == size, f"{got} bytes decoded, not {size}"
    return best / (size / 1024) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=1024, help="the answer's size")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many")
    args = parser.parse_args()
    body = _body(args.kib)
    for encoding, raw in (
        ("gzip", _gzip(body)),
        ("zstd", zstandard.ZstdCompressor().compress(body)),
    ):
        reads = cut(raw, -(-len(raw) // _READ))
        ours = _us_per_kib(_ours(encoding), reads, len(body), args.rounds)
        theirs = _us_per_kib(_httpx(encoding), reads, len(body), args.rounds)
        per_read = len(body) / len(raw) * 64 / 1e3  # KiB decoded per 64 KiB read, µs → ms
        print(
            f"{encoding}: {len(body) >> 10:,} KiB from {len(raw) >> 10:,} KiB in {len(reads)} reads"
        )
        for name, us in (("bounded (ours)", ours), ("httpx (unbounded)", theirs)):
            print(f"  {name:18} {us:6.2f} µs per KiB decoded, {us * per_read:6.2f} ms per read")


if __name__ == "__main__":
    main()
