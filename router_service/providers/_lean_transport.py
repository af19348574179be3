"""`LeanTransport`: the router's own HTTP/1.1 client under httpx's API (`http.transport: lean`).

Measured in isolation against the fast fake upstream (one request, keep-alive, body read), the
CPU per call was ~300 µs through aiohttp's session and ~460 µs through httpcore, against ~50 µs for
the bare protocol: most of a gateway's own per-request work went into the client library. This
keeps httpx's types at the boundary (adapters build `httpx.Request`s, read `httpx.Response`s,
`map_transport_errors` maps httpx errors, the tracing wrapper is unchanged) and does the wire work
with an asyncio protocol and httptools' parser (`_lean_conn.py`).

What it does, as httpx's transport would:
- Connections pooled per origin, most recently used first; idle ones expire after
  `keepalive_expiry_s`; at most `max_connections` open in all (a request waits for a slot up to
  its `pool` timeout, and an idle connection to another origin is closed to make room) and at
  most `max_keepalive_connections` kept idle.
- Timeouts per request from the `timeout` extension: connect, write, read (each wait for bytes)
  and pool, raising httpx's timeout errors. A connect is not timed out across a stall of the
  loop itself (`connect_within`): a socket connected while the loop was held is connected.
- TLS with the trust store httpx uses (certifi), SNI from the URL's host.
- A response body is handed over byte-exact (`body_parts` decodes `Content-Encoding`); closing it
  before its end closes the connection, so an abandoned stream is a disconnect upstream.
- A request on a reused keep-alive connection that the server closed before answering a single
  byte is sent once more on a new connection (the race every keep-alive client meets).

What it does not do: HTTP/2, proxies, `Expect: 100-continue`, upgrades, HEAD (refused with
`httpx.LocalProtocolError`). Informational (1xx) responses are skipped.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping

import httpx

from router_service._connect_deadline import connect_within
from router_service.providers._bounded_decode import Decoding, too_large
from router_service.providers._lean_conn import Http1Connection, Origin, bounded

__all__ = ["LeanTransport", "body_parts", "read_whole"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int,
        max_keepalive_connections: int,
        keepalive_expiry_s: float,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_connections = max_connections
        self._max_idle = max_keepalive_connections
        self._expiry_s = keepalive_expiry_s
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._clock = clock
        self._idle: dict[Origin, deque[Http1Connection]] = {}
        self._idle_count = 0
        self._open = 0  # connections opened (or opening) and not yet lost
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed and cannot be reopened")
        url = request.url
        if url.scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        if request.method == "HEAD":
            # The parser would wait for the body a HEAD response announces; no adapter sends one.
            raise httpx.LocalProtocolError("LeanTransport does not send HEAD requests")
        origin: Origin = (url.scheme, url.host, url.port or _DEFAULT_PORTS[url.scheme])
        timeout: Mapping[str, float | None] = request.extensions.get("timeout") or {}
        head = _head(request)
        body = request.content if isinstance(request.stream, httpx.ByteStream) else None
        for _ in range(2):
            conn = await self._acquire(origin, timeout)
            try:
                await conn.send(
                    head, body if body is not None else _parts(request), timeout.get("write")
                )
                await conn.response_head(timeout.get("read"))
            except httpx.TransportError as exc:
                conn.close()
                if (
                    conn.reused
                    and not conn.answered
                    and body is not None
                    and not isinstance(exc, httpx.TimeoutException)  # slow is not closed
                ):
                    continue  # the server closed an idle connection as we used it: once more
                raise
            except BaseException:
                conn.close()  # cancelled mid-exchange: the connection's state is unknown
                raise
            return httpx.Response(
                status_code=conn.status,
                headers=_response_headers(conn.headers),
                stream=_ResponseBody(self, conn, timeout.get("read")),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
            )
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
        self._idle_count = 0
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the pool --------------------------------------------------------------------------------

    async def _acquire(self, origin: Origin, limits: Mapping[str, float | None]) -> Http1Connection:
        while True:
            conn = self._take_idle(origin)
            if conn is not None:
                return conn
            if self._open >= self._max_connections:
                self._close_oldest_idle()
            if self._open < self._max_connections:
                return await self._connect(origin, limits.get("connect"))
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await bounded(waiter, limits.get("pool"), httpx.PoolTimeout)
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake_one()  # woken, then cancelled before it ran: pass the turn on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._closed:
                raise RuntimeError("the transport is closed")

    def _take_idle(self, origin: Origin) -> Http1Connection | None:
        idle = self._idle.get(origin)
        now = self._clock()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.is_open and now - conn.idle_since < self._expiry_s:
                conn.reused = True
                return conn
            conn.close()
        return None

    def _close_oldest_idle(self) -> None:
        oldest: deque[Http1Connection] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                oldest = idle
        if oldest is not None:
            self._idle_count -= 1
            oldest.popleft().close()  # its connection_lost frees the slot

    async def _connect(self, origin: Origin, connect_s: float | None) -> Http1Connection:
        scheme, host, port = origin
        self._open += 1
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if scheme == "https" else None
        try:
            connecting = loop.create_connection(
                lambda: Http1Connection(origin, self._lost),
                host,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
            )
            _, conn = await connect_within(connecting, connect_s)  # not across a stall
        except TimeoutError:
            self._slot_freed()
            raise httpx.ConnectTimeout(f"connect timed out after {connect_s:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            self._slot_freed()
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._slot_freed()
            raise
        conn.counted = True
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            verify = self._verify
            self._ssl = (
                verify
                if isinstance(verify, ssl.SSLContext)
                else httpx.create_ssl_context(verify=verify, trust_env=False)
            )
        return self._ssl

    def release(self, conn: Http1Connection) -> None:
        """A response body closed: keep its connection when the exchange finished cleanly."""
        if conn.keep_alive and not self._closed and self._idle_count < self._max_idle:
            conn.idle_since = self._clock()
            self._idle.setdefault(conn.origin, deque()).append(conn)
            self._idle_count += 1
            self._wake_one()
        else:
            conn.close()

    def _lost(self, conn: Http1Connection) -> None:
        if not conn.counted:
            return  # lost while connecting: `_connect` freed its slot
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
            self._idle_count -= 1
        self._slot_freed()

    def _slot_freed(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, pool: LeanTransport, conn: Http1Connection, read_s: float | None) -> None:
        self._pool: LeanTransport | None = pool
        self._conn = conn
        self._read_s = read_s

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._read(release=False)

    def parts(self) -> AsyncIterator[bytes] | None:
        """The body's parts straight from the connection (`body_parts`); None when it comes
        encoded (a Content-Encoding named): `body_parts` decodes it."""
        return None if self._conn.encoded else self._read(release=True)

    async def _read(self, release: bool) -> AsyncIterator[bytes]:
        """`release`: once read to its end the connection goes back to the pool, as httpx's
        `aiter_raw` closes the response then."""
        conn = self._conn
        while True:
            try:
                chunk = await conn.read_body(self._read_s)
            except BaseException:
                conn.close()
                raise
            if chunk is None:
                break
            yield chunk
            del chunk  # not held while the stream waits for the next
        if release:
            await self.aclose()

    def whole(self) -> Callable[[int], Awaitable[bytes]] | None:
        """How to read the body whole straight from the connection (`read_whole`); None when
        it comes encoded (a Content-Encoding named): `read_whole` decodes it."""
        return None if self._conn.encoded else self.read_all

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.release(self._conn)

    async def read_all(self, limit: int) -> bytes:
        """The whole body; the connection goes back to the pool once it has arrived. One past
        `limit` bytes is an upstream failure, its connection closed there (`too_large`)."""
        conn, parts, size = self._conn, [], 0
        while True:
            try:
                chunk = await conn.read_body(self._read_s)
            except BaseException:
                conn.close()
                raise
            if chunk is None:
                break
            size += len(chunk)
            if size > limit:
                conn.close()
                await self.aclose()
                raise too_large("body", limit)
            parts.append(chunk)
        await self.aclose()
        return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_whole(response: httpx.Response, limit: int) -> None:
    """`response.aread()`, held to `limit` bytes (decoded): one past it is an upstream failure
    (`too_large`), its connection closed. A body of ours that needs no decoding is read straight
    from the connection: httpx's way puts four async generators, two chunkers, a decoder and
    three context managers between them, ~4.5 % of the router's instructions for a unary call
    (benchmarks/README.md, 2026-12-05). So is one in an upstream call's span (`whole()` of
    telemetry's `_EndingStream`: the span ended once it is read). What httpx's `aread` leaves
    is left the same way: the content (httpx's own attribute: `Response(content=...)` sets it
    too), the stream consumed, closed, a read error naming its request."""
    whole = getattr(response.stream, "whole", None)  # ours, or a span's around ours
    read = None if whole is None else whole()
    try:
        content = await (_within(body_parts(response), limit) if read is None else read(limit))
    except httpx.RequestError as exc:
        exc.request = response.request
        raise
    response.is_stream_consumed = response.is_closed = True
    response._content = content


async def _within(parts: AsyncIterator[bytes], limit: int) -> bytes:
    """`parts` joined, failing one past `limit` bytes (the body read no further)."""
    read, size = [], 0
    try:
        async for part in parts:
            size += len(part)
            if size > limit:
                raise too_large("body", limit)
            read.append(part)
    finally:
        if isinstance(parts, AsyncGenerator):  # not left suspended for the GC to end
            await parts.aclose()
    return b"".join(read)


def body_parts(response: httpx.Response) -> AsyncIterator[bytes]:
    """`response.aiter_bytes()`, a body that comes encoded decoded in bounded steps (`Decoding`:
    httpx's decoders give each chunk's whole expansion, a decompression bomb's). A body of ours
    that needs no decoding is read straight from the connection (so is one in an upstream
    call's span: `parts()` of telemetry's `_EndingStream`): httpx's way holds two async
    generators, two chunkers (a `BytesIO` each), a decoder and two context managers for as long
    as a stream stays open (~2 KiB an idle stream, benchmarks/README.md, "One process"). The
    response is left as `aiter_bytes` leaves it: its stream consumed, and closed once read to
    its end."""
    parts = getattr(response.stream, "parts", None)  # ours, or a span's around ours
    read: AsyncIterator[bytes] | None = None if parts is None else parts()
    if read is not None:
        response.is_stream_consumed = True
        return read
    encoding = response.headers.get("content-encoding")
    return response.aiter_bytes() if encoding is None else _decoded(response, encoding)


async def _decoded(response: httpx.Response, encoding: str) -> AsyncIterator[bytes]:
    decoding = Decoding(encoding)
    raw = response.aiter_raw()
    try:
        async for chunk in raw:
            for piece in decoding.pieces(chunk):
                yield piece
    finally:
        if isinstance(raw, AsyncGenerator):  # not left suspended for the GC to end
            await raw.aclose()


_NO_HEADERS = httpx.Headers()


def _response_headers(triples: list[tuple[bytes, bytes, bytes]]) -> httpx.Headers:
    """A response's headers as `httpx.Headers(pairs)` holds them (its private list of (name,
    lower-case name, value)), from the triples the connection wrote as they arrived: httpx
    normalizes each name and value of a new `Headers` in two calls, ~40 for an upstream's 20.
    Made as a copy of an empty one: `Headers()` tests its None against two ABCs first."""
    headers = httpx.Headers(_NO_HEADERS)
    headers._list = triples
    return headers


def _head(request: httpx.Request) -> bytes:
    """Request line and headers as httpx built them (Host and Content-Length included)."""
    target = request.url.raw_path
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, _, value in request.headers._list:  # `headers.raw`, without its copy
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def _parts(request: httpx.Request) -> AsyncIterator[bytes]:
    assert isinstance(request.stream, httpx.AsyncByteStream)
    async for part in request.stream:
        yield part
