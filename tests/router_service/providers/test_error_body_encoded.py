"""An upstream's error body that comes compressed (`Content-Encoding`) is bounded as it is
decoded, not after: a 500 whose few hundred KiB of gzip, deflate or zstd decode to 1 GiB (a
decompression bomb) costs the router what `ERROR_BODY_BYTES` holds, not one received chunk's
expansion (~1,000 times it for deflate, ~30,000 times for zstd). Measured by the memory Python
allocated while the call ran (`tracemalloc`'s peak), on each transport, unary and stream."""

from __future__ import annotations

import asyncio
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable

import pytest
import zstandard

from clients import details_from_rpc_error
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import chat_failure
from tests.router_service.providers.test_error_body_bound import (
    LoopbackUpstream,
    config,
    read_request,
)

pytestmark = pytest.mark.timeout(120)

_START = b'{"error": {"message": "overloaded '
_DECODED = 1 << 30  # what the body decodes to
_PIECE = b" " * (1 << 20)
# Far over what a bounded read allocates (the body's 256 KiB, a few copies of it), far under
# what one received chunk of the bomb decodes to.
_PEAK_BYTES = 24 << 20


def _zlib(wbits: int) -> Callable[[], bytes]:
    def make() -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
        parts = [packer.compress(_START)]
        parts += [packer.compress(_PIECE) for _ in range(_DECODED // len(_PIECE))]
        return b"".join([*parts, packer.flush()])

    return make


def _zstd() -> bytes:
    packer = zstandard.ZstdCompressor().compressobj()
    parts = [packer.compress(_START)]
    parts += [packer.compress(_PIECE) for _ in range(_DECODED // len(_PIECE))]
    return b"".join([*parts, packer.flush()])


_BOMBS = {"gzip": _zlib(zlib.MAX_WBITS | 16), "deflate": _zlib(zlib.MAX_WBITS), "zstd": _zstd}
_MADE: dict[str, bytes] = {}


def bomb(encoding: str) -> bytes:
    if encoding not in _MADE:
        _MADE[encoding] = _BOMBS[encoding]()
    return _MADE[encoding]


class Bomb(LoopbackUpstream):
    """A loopback upstream answering every request 500 with a compressed JSON error body."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self.encoding = encoding
        self.body = bomb(encoding)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                b"content-encoding: %s\r\ncontent-length: %d\r\n\r\n"
                % (self.encoding.encode(), len(self.body))
            )
            writer.write(self.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture(params=sorted(_BOMBS))
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Bomb]:
    served = Bomb(request.param)
    yield served
    await served.stop()


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_compressed_error_body_is_bounded_as_it_is_decoded(
    upstream: Bomb, start_router: StartRouter, transport: str, streamed: bool
) -> None:
    router = await start_router(config(await upstream.start(), transport, "bomb"))
    tracemalloc.start()
    try:
        failure = await chat_failure(router.stub, streamed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    details = details_from_rpc_error(failure)
    assert not details.bare and (details.provider, details.upstream_status) == ("bomb", 500)
    assert "overloaded" in str(failure.details())  # what it said, decoded
    assert peak < _PEAK_BYTES, f"{peak >> 20} MiB allocated reading the error"
    assert await router.leases_held() == 0


def _wide_zstd() -> bytes:
    """zstd in a frame that asks for a 16 MiB window: past RFC 9659's 8 MiB."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=24)
    packer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return packer.compress(_START + b'"}}') + packer.flush()


class Undecoded(Bomb):
    """A loopback upstream answering every request 500 with a body in an encoding the router
    does not decode (br: brotli is not installed with it; a made-up name), or a zstd frame
    whose window is too large to hold."""

    def __init__(self, encoding: str) -> None:
        LoopbackUpstream.__init__(self)
        self.encoding = encoding
        self.body = _wide_zstd() if encoding == "zstd" else b"\x1b\x2a\x00\xf8" * 64


@pytest.mark.parametrize(
    ("encoding", "note"),
    [
        ("br", "in Content-Encoding 'br', which is not decoded"),
        ("x-squeeze", "in Content-Encoding 'x-squeeze', which is not decoded"),
        ("zstd", "is corrupt zstd"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_an_error_body_not_decoded_keeps_a_note_of_why(
    start_router: StartRouter, encoding: str, note: str, streamed: bool
) -> None:
    upstream = Undecoded(encoding)
    try:
        router = await start_router(config(await upstream.start(), "lean", "bomb"))
        failure = await chat_failure(router.stub, streamed)
    finally:
        await upstream.stop()
    details = details_from_rpc_error(failure)
    assert (details.provider, details.upstream_status) == ("bomb", 500)
    assert note in details.message
    assert await router.leases_held() == 0
