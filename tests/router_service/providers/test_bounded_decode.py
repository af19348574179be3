"""`Decoding`: a body's Content-Encoding undone in steps of at most `STEP` bytes, whatever one
received chunk stands for; every way an upstream sends gzip, deflate or zstd read as httpx
reads it."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from itertools import pairwise

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._bounded_decode import STEP, Decoding, decoded_within

_TEXT = b'{"choices": []}' + b" " * (3 * STEP + 17)


def _deflated(wbits: int, body: bytes = _TEXT) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return packer.compress(body) + packer.flush()


def _zstd(body: bytes = _TEXT, *, checksum: bool = False) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=checksum).compress(body)


def _zstd_flushed(body: bytes, every: int) -> bytes:
    """zstd as a streaming compressor sends it: no content size, a block flushed every `every`
    bytes (an event stream's events)."""
    packer = zstandard.ZstdCompressor().compressobj()
    parts = [packer.compress(body[at : at + every]) for at in range(0, len(body), every)]
    return b"".join(parts) + packer.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


def _skippable(data: bytes) -> bytes:
    """A skippable frame (RFC 8878 3.1.2): data a decoder passes over."""
    return struct.pack("<II", 0x184D2A53, len(data)) + data


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("gzip", _deflated(zlib.MAX_WBITS | 16)),
        ("deflate", _deflated(zlib.MAX_WBITS)),  # zlib's wrapper, as RFC 9110 says
        ("deflate", _deflated(-zlib.MAX_WBITS)),  # the bare stream, as many servers send
        ("zstd", _zstd()),
        ("zstd", _zstd(_TEXT[:100]) + _zstd(_TEXT[100:])),  # two frames, one after the other
        # content sizes of 1, 2 and 4 bytes, checksums, a skippable frame, an empty one
        (
            "zstd",
            _zstd(_TEXT[:100], checksum=True)
            + _skippable(b"x" * 300)
            + _zstd(b"")
            + _zstd(_TEXT[100:1000], checksum=True)
            + _zstd(_TEXT[1000:], checksum=True),
        ),
        ("zstd", _zstd_flushed(_TEXT, 1000)),  # no content size, many small blocks
        ("deflate, zstd", _zstd(_deflated(zlib.MAX_WBITS))),  # undone last first
        ("GZIP , identity", _deflated(zlib.MAX_WBITS | 16)),
    ],
)
@pytest.mark.parametrize("received", [1, 7, 4096, 1 << 20], ids=lambda n: f"by{n}")
def test_each_encoding_is_undone_in_bounded_steps(encoding: str, raw: bytes, received: int) -> None:
    decoding = Decoding(encoding)
    pieces = [
        piece
        for at in range(0, len(raw), received)
        for piece in decoding.pieces(raw[at : at + received])
    ]
    assert b"".join(pieces) == _TEXT
    assert max(map(len, pieces)) <= STEP


def test_a_bomb_received_whole_still_comes_a_step_at_a_time() -> None:
    bomb = _deflated(zlib.MAX_WBITS | 16, b"\0" * (256 << 20))  # ~256 KiB for 256 MiB
    steps = Decoding("gzip").pieces(bomb)
    assert [len(next(steps)) for _ in range(3)] == [STEP] * 3  # nothing decoded ahead


@pytest.mark.parametrize("encoding", ["br", "compress", "x-squeeze"])
def test_an_encoding_not_decoded_is_an_upstream_failure_naming_it(encoding: str) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        Decoding(encoding)
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR
    assert repr(encoding) in caught.value.message


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_a_corrupt_body_is_an_upstream_failure(encoding: str) -> None:
    with pytest.raises(UpstreamFailure, match=f"corrupt {encoding}"):
        list(Decoding(encoding).pieces(b"\x1f\x8b\x08\x00" + b"\xff" * 64))


def test_an_error_body_keeps_what_its_start_decodes_to_or_a_note() -> None:
    cut = _deflated(zlib.MAX_WBITS | 16)[:40]  # read to its bound: no end
    assert _TEXT.startswith(decoded_within(cut, "gzip", 1 << 20))
    assert decoded_within(_zstd(), "zstd", 10) == _TEXT[:10]
    assert decoded_within(b"\x1b\x00", "br", 100) == (
        b"(upstream body in Content-Encoding 'br', which is not decoded)"
    )


_BLOCK = 128 * 1024  # the most a zstd block decodes to (RFC 8878's Block_Maximum_Size)


def _prose(size: int) -> bytes:
    """`size` bytes of random words: text that compresses about as an answer's does (~4x)."""
    draw = random.Random(7)
    words = [
        bytes(draw.choices(b"etaoinshrdlucmfwypvbgk", k=draw.randint(2, 9))) for _ in range(5000)
    ]
    return b" ".join(draw.choices(words, k=size // 5))[:size]


@pytest.fixture
def zstd_outputs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of what each call of zstandard's `decompress` gave the decoder: the library
    observed as the decoder uses it (each call passed on to it unchanged)."""
    outputs: list[int] = []
    library = zstandard.ZstdDecompressor

    class Observed:
        def __init__(self, inner: zstandard.ZstdDecompressionObj) -> None:
            self._inner = inner

        def decompress(self, data: bytes) -> bytes:
            out = self._inner.decompress(data)
            outputs.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    class Decompressor:
        def __init__(self, max_window_size: int) -> None:
            self._inner = library(max_window_size=max_window_size)

        def decompressobj(self, read_across_frames: bool) -> Observed:
            return Observed(self._inner.decompressobj(read_across_frames=read_across_frames))

    monkeypatch.setattr(zstandard, "ZstdDecompressor", Decompressor)
    return outputs


def test_zstd_is_fed_a_block_at_a_time_not_a_few_bytes(zstd_outputs: list[int]) -> None:
    body = _prose(1 << 20)
    raw = _zstd(body)
    decoding = Decoding("zstd")
    reads = [raw[at : at + 65536] for at in range(0, len(raw), 65536)]
    assert b"".join(piece for data in reads for piece in decoding.pieces(data)) == body
    blocks = -(-len(body) // _BLOCK)
    # a call per block, and one more per read at most (a block cut by a read's end)
    assert len(zstd_outputs) <= blocks + len(reads), f"{len(zstd_outputs)} calls"


@pytest.mark.parametrize("compress", [_zstd, lambda body: _zstd_flushed(body, 1 << 20)])
def test_a_zstd_bomb_decodes_no_more_than_a_block_at_once(
    zstd_outputs: list[int], compress: Callable[[bytes], bytes]
) -> None:
    bomb = compress(b"\0" * (64 << 20))  # ~2 KiB for 64 MiB: a few bytes a 128 KiB block
    steps = Decoding("zstd").pieces(bomb)
    assert [len(next(steps)) for _ in range(3)] == [STEP] * 3
    assert max(zstd_outputs) <= _BLOCK  # never more than one block's output held at once


def _reserved_block() -> bytes:
    frame = _zstd(b"hello")
    header = len(frame) - 3 - 5  # the frame's one block: a raw one, its 3-byte header, 5 bytes
    return frame[:header] + bytes([frame[header] | 0b110]) + frame[header + 1 :]


def _rle_block(size: int) -> bytes:
    """A frame (a 2 MiB window, no content size) of one RLE block of `size` bytes of "a"."""
    header = size << 3 | 1 << 1 | 1  # its size, RLE, the last block
    return b"\x28\xb5\x2f\xfd\x00\x58" + header.to_bytes(3, "little") + b"a"


@pytest.mark.parametrize("raw", [_reserved_block(), _rle_block(1 << 20)], ids=["reserved", "big"])
def test_a_zstd_block_past_the_format_is_corrupt(zstd_outputs: list[int], raw: bytes) -> None:
    with pytest.raises(UpstreamFailure, match="corrupt zstd"):
        list(Decoding("zstd").pieces(raw))
    assert sum(zstd_outputs) == 0  # refused before it is decoded


def test_a_zstd_rle_block_of_the_most_is_read() -> None:
    assert b"".join(Decoding("zstd").pieces(_rle_block(_BLOCK))) == b"a" * _BLOCK


def _tiny_blocks(count: int) -> bytes:
    """A frame of `count` RLE blocks of one byte each (4 bytes a block), then empty raw ones
    and a skippable frame: much to read, little to decode."""
    rle = (1 << 3 | 1 << 1).to_bytes(3, "little") + b"a"
    return (
        b"\x28\xb5\x2f\xfd\x00\x58"
        + rle * count
        + b"\x00\x00\x00" * count
        + b"\x01\x00\x00"
        + _skippable(b"")
    )


def test_zstd_tiny_blocks_are_fed_together_up_to_a_block_of_output(
    zstd_outputs: list[int],
) -> None:
    raw = _tiny_blocks(1 << 16)
    decoding = Decoding("zstd")
    reads = [raw[at : at + 65536] for at in range(0, len(raw), 65536)]
    out = b"".join(piece for data in reads for piece in decoding.pieces(data))
    assert out == b"a" * (1 << 16)
    # a call per read (a 64 KiB read of them decodes to less than a block), not one per block
    assert len(zstd_outputs) <= 2 * len(reads), f"{len(zstd_outputs)} calls"
    assert max(zstd_outputs) <= _BLOCK


def _unbounded(raw: bytes, cuts: list[int]) -> bytes | None:
    """zstandard's own decode of `raw` fed in the same reads (None: an error)."""
    frames = zstandard.ZstdDecompressor(max_window_size=8 << 20).decompressobj(
        read_across_frames=True
    )
    try:
        return b"".join(frames.decompress(raw[a:b]) for a, b in pairwise(cuts))
    except zstandard.ZstdError:
        return None


def _bounded(raw: bytes, cuts: list[int]) -> bytes | None:
    decoding, out = Decoding("zstd"), []
    try:
        for a, b in pairwise(cuts):
            out += list(decoding.pieces(raw[a:b]))
    except UpstreamFailure:
        return None
    assert all(len(piece) <= STEP for piece in out)
    return b"".join(out)


_FRAME = st.builds(
    lambda body, level, checksum, size, flush: (
        zstandard.ZstdCompressor(
            level=level, write_checksum=checksum, write_content_size=size
        ).compress(body)
        if flush is None
        else _zstd_flushed(body, flush)
    ),
    st.binary(max_size=3000)
    | st.builds(lambda n, c: c * n, st.integers(0, 300_000), st.binary(min_size=1, max_size=3)),
    st.sampled_from([1, 3, 19]),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(1, 5000),
)


def _with_dictionary_id(body: bytes, flag: int, number: int) -> bytes:
    """A frame naming a dictionary (RFC 8878's Dictionary_ID, 1, 2 or 4 bytes after the window
    descriptor), as one compressed with a dictionary does: no content size, so a window byte."""
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(body)
    width = (0, 1, 2, 4)[flag]
    named = number % (1 << 8 * width)
    return (
        frame[:4]
        + bytes([frame[4] | flag])
        + frame[5:6]
        + named.to_bytes(width, "little")
        + frame[6:]
    )


_NAMED = st.builds(_with_dictionary_id, st.binary(max_size=500), st.integers(1, 3), st.integers(0))


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(
        _FRAME | _NAMED | st.binary(max_size=20).map(_skippable), min_size=1, max_size=3
    ),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), max_size=2),
    cut_at=st.lists(st.integers(0, 1 << 20), max_size=6),
    keep=st.integers(0, 1 << 20) | st.none(),
)
def test_zstd_decodes_as_zstandard_does_whatever_the_frames_and_reads(
    frames: list[bytes], flips: list[tuple[int, int]], cut_at: list[int], keep: int | None
) -> None:
    """Differential: any frames (levels, checksums, content sizes or none, flushed blocks,
    dictionary ids, skippable frames), a bit or two flipped, the body cut short, read in any
    pieces: what the bounded decoder gives is what zstandard's unbounded decode of the same
    reads gives, or both fail. (Where calls are cut is not seen here: the bound tests above.)"""
    raw = bytearray(b"".join(frames))
    for at, bit in flips:
        if raw:
            raw[at % len(raw)] ^= 1 << bit
    body = bytes(raw[:keep] if keep is not None else raw)
    cuts = sorted({0, len(body), *(at % (len(body) + 1) for at in cut_at)})
    assert _bounded(body, cuts) == _unbounded(body, cuts)
