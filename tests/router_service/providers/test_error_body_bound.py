"""An upstream's error body is read no further than what its error is made of
(`ERROR_BODY_BYTES`): an upstream answering 500 with a body it says is 1 GiB is neither buffered
nor drained. The router reads its start, closes the connection and gives the caller its typed
error, on each transport (lean, aiohttp, httpx's own), for a unary call and a stream alike.
Measured by what the upstream got written to the router before it hung up, not by time."""

from __future__ import annotations

import abc
import asyncio
import re
import socket
from collections.abc import AsyncIterator

import pytest

from clients import details_from_rpc_error
from router_service.providers._http import ERROR_BODY_BYTES
from tests.conftest import HANG_GUARD, StartRouter
from tests.helpers import close_listener
from tests.router_service.auth.helpers import chat_failure

pytestmark = pytest.mark.timeout(60)

SAID = 1 << 30  # the body's announced length
CAP = 64 << 20  # where the upstream gives up writing (an old router read all of it)
# What the sockets' buffers hold on loopback past what the router read: the upstream's send
# buffer is held small, the router's receive buffer is the kernel's.
BUFFERED = 4 << 20
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
_WORDS = b"overloaded " * 6_000  # ~64 KiB a write, words as an upstream's text has them


class LoopbackUpstream(abc.ABC):
    """A loopback upstream on a port of its own (`start` gives its base URL), whose `_serve`
    answers each connection; `read_request` reads a request whole first."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    @abc.abstractmethod
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one connection: each upstream its own way."""

    async def stop(self) -> None:
        if self.server is not None:
            await close_listener(self.server)


async def read_request(reader: asyncio.StreamReader) -> None:
    """One request, its head and its body (by its content-length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = _LENGTH.search(head)
    await reader.readexactly(int(length.group(1)) if length else 0)


class HugeErrors(LoopbackUpstream):
    """A loopback upstream answering every request 500 with a JSON error body announced as
    1 GiB, written for as long as the router takes it (at most CAP, then it hangs up)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []  # per connection, once it ended
        self.ended = asyncio.Event()  # a connection ended

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sent = 0
        try:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                b'content-length: %d\r\n\r\n{"error": {"message": "' % SAID
            )
            while sent < CAP:
                writer.write(_WORDS)
                await writer.drain()
                sent += len(_WORDS)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.sent.append(sent)
            self.ended.set()
            writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[HugeErrors]:
    huge = HugeErrors()
    yield huge
    await huge.stop()


def config(url: str, transport: str, provider: str = "huge") -> dict[str, object]:
    """Group `chain` on one deployment of `provider` at `url`, over `transport`."""
    key = f"sk-{provider}-1"
    return {
        "providers": {provider: {"base_url": url, "keys": [key], "timeouts": HANG_GUARD}},
        "models": {"chain": {"deployments": [{"provider": provider, "model": "m"}]}},
        "server": {"port": 0},
        "http": {"transport": transport},
    }


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_huge_error_body_is_read_no_further_than_its_error_uses(
    upstream: HugeErrors, start_router: StartRouter, transport: str, streamed: bool
) -> None:
    router = await start_router(config(await upstream.start(), transport))
    failure = await chat_failure(router.stub, streamed)
    details = details_from_rpc_error(failure)
    assert not details.bare and (details.provider, details.upstream_status) == ("huge", 500)
    assert "overloaded" in str(failure.details())  # what the upstream said, its start
    assert len(str(failure.details())) < 4096
    await asyncio.wait_for(upstream.ended.wait(), 30)  # a hang guard: the router hung up
    assert upstream.sent and max(upstream.sent) < ERROR_BODY_BYTES + BUFFERED
    assert await router.leases_held() == 0
