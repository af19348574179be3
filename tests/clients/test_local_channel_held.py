"""What an in-process call keeps of its request while its handler runs: the handler's parsed
request, not the bytes it was parsed from (a prompt of 32 KiB was 32 KiB more an open stream
in `switchboard serve`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import grpc

from clients import LocalChannel
from router_service.server._in_process import InProcessHandlers
from tests.helpers import eventually

_MARKER = "held-request-bytes:"
_RELEASE = asyncio.Event()
_WAITING: list[str] = []


async def _answers_later(request: str, context: grpc.aio.ServicerContext) -> bytes:
    _WAITING.append(request)
    await _RELEASE.wait()
    return b"done"


async def _streams_then_waits(
    request: str, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    yield b"first"
    _WAITING.append(request)
    await _RELEASE.wait()


def _generic() -> grpc.GenericRpcHandler:
    def parse(data: bytes) -> str:
        return data.decode()

    handlers = {
        "unary": grpc.unary_unary_rpc_method_handler(_answers_later, parse),
        "stream": grpc.unary_stream_rpc_method_handler(_streams_then_waits, parse),
    }
    return grpc.method_handlers_generic_handler("t.Held", handlers)


def _held_bytes(marker_text: str) -> list[str]:
    """What holds a `bytes` of the request (bytes are not tracked by the collector: found among
    what the tracked objects refer to), each holder by its type and code."""
    marker = marker_text.encode()  # made here: the caller's frame holds no bytes of it
    gc.collect()
    holders = []
    for obj in gc.get_objects():
        for ref in gc.get_referents(obj):
            # By type: `isinstance` would read a lazy proxy's `__class__` (tests/helpers.py).
            if issubclass(type(ref), bytes | bytearray) and marker in ref:
                code = getattr(obj, "cr_code", None) or getattr(obj, "ag_code", None)
                holders.append(f"{type(obj).__name__} {getattr(code, 'co_qualname', '')}")
    return holders


async def _check(local: LocalChannel, method: str) -> None:
    text = f"{_MARKER}{method}:" + "p" * 4096  # the caller's, a str
    encode = str.encode  # the call's bytes are made in the channel, its own
    if method == "unary":
        call: Any = local.unary_unary(f"/t.Held/{method}", request_serializer=encode)(text)
        waiting = asyncio.ensure_future(call)
    else:
        call = local.unary_stream(f"/t.Held/{method}", request_serializer=encode)(text)
        assert await call.read() == b"first"

    async def handling() -> bool:
        return text in _WAITING

    await eventually(handling, what=f"the {method} handler waiting")
    try:
        assert _held_bytes(f"{_MARKER}{method}:") == []
    finally:
        call.cancel()
        if method == "unary":
            await asyncio.gather(waiting, return_exceptions=True)


async def test_a_handler_waiting_holds_no_bytes_of_its_request() -> None:
    server = grpc.aio.server()
    handlers = InProcessHandlers(server, [], 1024 * 1024)
    handlers.add_generic_rpc_handlers((_generic(),))
    handlers.start()
    local = LocalChannel(handlers)
    try:
        for method in ("unary", "stream"):
            await _check(local, method)
    finally:
        await local.close()
        await server.stop(0)
