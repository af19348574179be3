"""Test doubles for `LeanTransport`'s tests (test_lean_pool.py, test_lean_wire.py): a tiny asyncio
HTTP/1.1 server (`Server`, `Peer`) whose every byte the test writes, a fake clock, and helpers to
send one exchange and wait on the event loop instead of the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType

import httpx

from router_service.providers._lean_conn import Http1Connection
from router_service.providers._lean_transport import LeanTransport, _ResponseBody
from tests.helpers import close_listener

# The most asyncio's selector transport reads from a socket at once.
_READ_CHUNK = 256 * 1024


# -- the client side --------------------------------------------------------------------------


class FakeClock:
    """The transport's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeTransport = Callable[..., LeanTransport]


def request(
    url: str,
    *,
    method: str = "GET",
    content: bytes | AsyncIterator[bytes] | None = None,
    pool: float = 5.0,
    read: float = 5.0,
) -> httpx.Request:
    timeout = {"connect": 5.0, "read": read, "write": 5.0, "pool": pool}
    return httpx.Request(method, url, content=content, extensions={"timeout": timeout})


async def fetch(
    transport: LeanTransport,
    url: str,
    *,
    method: str = "GET",
    content: bytes | AsyncIterator[bytes] | None = None,
    read: float = 5.0,
) -> httpx.Response:
    """One exchange, body read and closed (so the connection goes back to the pool)."""
    response = await transport.handle_async_request(
        request(url, method=method, content=content, read=read)
    )
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def connection_of(response: httpx.Response) -> Http1Connection:
    stream = response.stream
    assert isinstance(stream, _ResponseBody)
    return stream._conn


async def until(predicate: Callable[[], bool]) -> None:
    """Let the event loop turn until `predicate()` holds (a bounded number of turns, no timing):
    for what follows a socket event, such as a closed connection leaving the pool."""
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def waiting(transport: LeanTransport, n: int) -> Callable[[], bool]:
    """Whether `n` requests wait for a pool slot."""
    return lambda: len(transport._waiters) == n


# -- the server side --------------------------------------------------------------------------


class Exchange:
    """A request as the server read it: head and raw body bytes (chunk framing included)."""

    def __init__(self, head: bytes, body: bytes) -> None:
        self.head = head
        self.body = body

    def header(self, name: str) -> str | None:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class Peer:
    """One connection the server accepted (`number` counts from 1 in accept order)."""

    def __init__(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.number = number
        self.reader = reader
        self.writer = writer
        self.requests: list[Exchange] = []
        self.eof = asyncio.Event()  # the client closed the connection

    async def read_request(self) -> Exchange | None:
        """The next request, or None when the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof.set()
            return None
        exchange = Exchange(head, b"")
        if (exchange.header("transfer-encoding") or "").lower() == "chunked":
            raw = b""
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.strip(), 16)
                raw += size_line + await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            exchange.body = raw
        elif (length := exchange.header("content-length")) is not None:
            exchange.body = await self.reader.readexactly(int(length))
        self.requests.append(exchange)
        return exchange

    def respond(self, body: bytes = b"ok", *headers: str, length: int | None = None) -> None:
        """A 200 with `body` and Content-Length (`length`, when the body goes out in parts)."""
        length = len(body) if length is None else length
        lines = ["HTTP/1.1 200 OK", f"X-Conn: {self.number}", f"Content-Length: {length}"]
        self.writer.write(("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()

    def reset(self) -> None:
        """Drop the connection with an RST (linger 0), as a crashed server."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def keep_alive(peer: Peer) -> None:
    """A well-behaved server: answers every request until the client closes the connection."""
    while await peer.read_request() is not None:
        peer.respond()


@contextlib.contextmanager
def unanswered() -> Iterator[str]:
    """The URL of a listener whose accept queue is full: a connect's SYN goes unanswered."""
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        first.connect(address)  # fills the queue: nothing is accepted
        yield f"http://127.0.0.1:{address[1]}/"


class Server:
    """An HTTP/1.1 server on loopback running `serve(peer)` for each connection."""

    def __init__(
        self,
        serve: Callable[[Peer], Awaitable[None]] = keep_alive,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._serve = serve
        self._tls = tls
        self.peers: list[Peer] = []
        self.closed: list[Peer] = []  # connections whose handler ended (and closed them)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}/"

    def requests(self) -> list[int]:
        """How many requests each connection carried, in accept order."""
        return [len(peer.requests) for peer in self.peers]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(len(self.peers) + 1, reader, writer)
        self.peers.append(peer)
        try:
            with contextlib.suppress(asyncio.CancelledError):  # cancelled by __aexit__
                await self._serve(peer)
        finally:
            await peer.close()
            self.closed.append(peer)
            self._tasks.discard(task)
            self._changed.set()

    async def wait_closed(self, n: int) -> None:
        """Until the server has closed `n` connections."""
        while len(self.closed) < n:
            self._changed.clear()
            await self._changed.wait()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._tls)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        await close_listener(self._server)  # none it accepted is dropped unclosed
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
