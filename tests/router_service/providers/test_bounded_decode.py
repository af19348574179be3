"""`Decoding`: a body's Content-Encoding undone in steps of at most `STEP` bytes, whatever one
received chunk stands for; every way an upstream sends gzip, deflate or zstd read as httpx
reads it."""

from __future__ import annotations

import zlib

import pytest
import zstandard

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._bounded_decode import STEP, Decoding, decoded_within

_TEXT = b'{"choices": []}' + b" " * (3 * STEP + 17)


def _deflated(wbits: int, body: bytes = _TEXT) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return packer.compress(body) + packer.flush()


def _zstd(body: bytes = _TEXT) -> bytes:
    return zstandard.ZstdCompressor().compress(body)


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("gzip", _deflated(zlib.MAX_WBITS | 16)),
        ("deflate", _deflated(zlib.MAX_WBITS)),  # zlib's wrapper, as RFC 9110 says
        ("deflate", _deflated(-zlib.MAX_WBITS)),  # the bare stream, as many servers send
        ("zstd", _zstd()),
        ("zstd", _zstd(_TEXT[:100]) + _zstd(_TEXT[100:])),  # two frames, one after the other
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
