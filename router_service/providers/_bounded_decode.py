"""An upstream's body decoded (`Content-Encoding`) in bounded steps: httpx's decoders give each
received chunk's whole expansion (one 64 KiB chunk of gzip is ~64 MiB decoded, of zstd ~2 GiB: a
decompression bomb). `Decoding` decodes a body as it arrives, at most `STEP` bytes at a time, so
whoever reads it (a unary body's bound, an event stream's per-event bound) stops a bomb at its
bound, not after; `decoded_within` decodes the start of an error body no further than a bound.

Decoded: gzip, deflate (zlib's wrapper or the bare stream, as servers send either) and zstd
(when zstandard is installed, as httpx does; its window held to RFC 9659's 8 MiB, so a frame
cannot make the router hold a window of GiBs). Not: br (brotli is not installed with the router,
so httpx never offers it) or any other name: a success body in one is an upstream failure naming
it, an error body keeps a note of it (its status still classifies the error)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from itertools import chain

from router_service._zlib_window import zlib_window
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._zstd_blocks import ZstdBlocks

try:  # httpx decodes zstd only when zstandard is installed (it imports it then); so does this
    import zstandard

    _ZSTD = True
except ImportError:  # pragma: no cover - installed here
    _ZSTD = False

__all__ = ["STEP", "Decoding", "decoded_within", "too_large"]

STEP = 64 * 1024  # the most one step of decoding gives
# RFC 9659 (zstd as a content coding): a window of at most 8 MiB; zstandard's default takes 128.
_ZSTD_WINDOW = 8 << 20
_ZLIB = ("gzip", "x-gzip", "deflate")


def too_large(what: str, limit: int) -> UpstreamFailure:
    """The failure of an upstream answer past a bound: the upstream's (not the caller's, not the
    key's: nothing to cool a key for), as a malformed answer is."""
    return UpstreamFailure(
        Outcome.UPSTREAM_ERROR, f"upstream {what} larger than the limit of {limit} bytes"
    )


def _unreadable(detail: str) -> UpstreamFailure:
    return UpstreamFailure(Outcome.UPSTREAM_ERROR, f"upstream body {detail}")


class _Zlib:
    """gzip or deflate, `STEP` bytes of output at a time (zlib's `max_length`)."""

    __slots__ = ("_head", "_inflater", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._inflater: zlib._Decompress | None = None  # made by the first two bytes
        self._head = b""  # a first byte, until the second tells deflate's kind (`zlib_window`)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        inflater = self._inflater
        if inflater is None:
            data, self._head = self._head + data, b""
            if len(data) < 2:
                self._head = data
                return
            inflater = self._inflater = zlib.decompressobj(zlib_window(self._name, data))
        while data or not inflater.eof:
            try:
                out = inflater.decompress(data, STEP)
            except zlib.error as exc:
                raise _unreadable(f"is corrupt {self._name}: {exc}") from None
            data = inflater.unconsumed_tail
            if out:
                yield out
            if inflater.eof or (not data and len(out) < STEP):
                return  # what follows a stream's end is ignored, as httpx ignores it


class _Zstd:
    """zstd, one frame after another, fed to the end of one block a step (`ZstdBlocks`: a step
    holds at most a block's 128 KiB, as zstandard's decompressobj has no bound on a step's
    output) and its output cut to `STEP` pieces."""

    __slots__ = ("_blocks", "_frames")

    def __init__(self) -> None:
        self._blocks = ZstdBlocks()
        decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW)
        self._frames = decompressor.decompressobj(read_across_frames=True)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        view, start = memoryview(data), 0
        try:
            for end in chain(self._blocks.ends(data), (len(data),)):
                out = self._frames.decompress(view[start:end]) if end > start else b""
                start = end
                for at in range(0, len(out), STEP):
                    yield out[at : at + STEP]
        except (zstandard.ZstdError, ValueError) as exc:
            raise _unreadable(f"is corrupt zstd: {exc}") from None


class Decoding:
    """A body's `Content-Encoding` undone as it arrives: `pieces` of each received chunk, at most
    `STEP` bytes each. An encoding this does not decode, or a corrupt body: an upstream failure
    (UPSTREAM_ERROR) naming it. A body cut short gives what its start decodes to, as httpx's
    decoders do (a stream's end after `[DONE]` is no failure; a unary body cut short is no JSON)."""

    __slots__ = ("_stages",)

    def __init__(self, content_encoding: str) -> None:
        names = [name.strip().lower() for name in content_encoding.split(",")]
        self._stages: list[_Zlib | _Zstd] = []
        for name in reversed(names):  # the last applied undone first
            if name in ("", "identity"):
                continue
            if name in _ZLIB:
                self._stages.append(_Zlib(name))
            elif name == "zstd" and _ZSTD:
                self._stages.append(_Zstd())
            else:
                raise _unreadable(f"in Content-Encoding {name[:40]!r}, which is not decoded")

    def pieces(self, chunk: bytes) -> Iterator[bytes]:
        return self._through(0, chunk)

    def _through(self, stage: int, data: bytes) -> Iterator[bytes]:
        if stage == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[stage].pieces(data):
            yield from self._through(stage + 1, piece)


def decoded_within(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """`raw` (an error body's start) decoded to at most `limit` bytes. A body cut short (as an
    error body read to its bound is) gives what its start decodes to; one in an encoding this
    does not decode, or that does not decode, gives a note saying so: its HTTP status still
    classifies the error, and bytes still encoded are no text to show."""
    out = bytearray()
    try:
        for piece in Decoding(content_encoding).pieces(raw):
            out += piece
            if len(out) >= limit:
                break
    except UpstreamFailure as exc:
        if not out:
            return f"({exc.message})".encode()
    return bytes(out[:limit])
