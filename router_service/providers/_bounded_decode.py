"""An upstream's error body decoded (`Content-Encoding`) no further than a bound: httpx's decoders
give each received chunk's whole expansion (one 64 KiB chunk of gzip is ~64 MiB decoded, of zstd
~2 GiB: a decompression bomb), so `read_error_body` reads an encoded body raw and decodes it here,
each step's output held to `limit` bytes."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

try:  # httpx decodes zstd only when zstandard is installed (it imports it then); so does this
    import zstandard

    _ZSTD = True
except ImportError:  # pragma: no cover - installed here
    _ZSTD = False

__all__ = ["decoded_within"]

_WRITE = 64 * 1024  # zstd's output per step


def decoded_within(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """`raw` decoded by each encoding `content_encoding` names (last applied first), each step
    at most `limit` bytes. A body cut short (as an error body read to its bound is) gives what
    its start decodes to; one that does not decode, or in an encoding this cannot hold to a bound
    (br, an unknown name), gives b"": its HTTP status still classifies the error, and bytes
    still encoded are no text to show."""
    data = raw
    names = [name.strip().lower() for name in content_encoding.split(",")]
    for name in reversed(names):
        if name in ("", "identity"):
            continue
        decode = _DECODERS.get(name)
        if decode is None:
            return b""
        try:
            data = decode(data, limit)
        except zlib.error:
            return b""
    return data[:limit]


def _zlib(wbits: int) -> Callable[[bytes, int], bytes]:
    def decode(data: bytes, limit: int) -> bytes:
        return zlib.decompressobj(wbits).decompress(data, limit)

    return decode


def _deflate(data: bytes, limit: int) -> bytes:
    """As httpx reads `deflate`: zlib's wrapper, or (servers send either) a bare deflate stream."""
    try:
        return zlib.decompressobj().decompress(data, limit)
    except zlib.error:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, limit)


def _zstd(data: bytes, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    steps = zstandard.ZstdDecompressor().read_to_iter(io.BytesIO(data), write_size=_WRITE)
    try:
        for part in steps:
            parts.append(part)
            size += len(part)
            if size >= limit:
                break
    except zstandard.ZstdError:
        pass  # cut short (read to its bound), or not zstd: what its start gave
    return b"".join(parts)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _zlib(zlib.MAX_WBITS | 16),
    "x-gzip": _zlib(zlib.MAX_WBITS | 16),
    "deflate": _deflate,
}
if _ZSTD:
    _DECODERS["zstd"] = _zstd
