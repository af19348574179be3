"""An httpx transport over one aiohttp `ClientSession`: httpx's API above, aiohttp's pool below.

httpcore's pool scans every connection on each request and release (`is_idle`, `getpeername`
through anyio), which costs more the more connections are open (encode/httpx#3215). aiohttp keeps
idle connections in per-host deques. This transport swaps the pool and the HTTP/1.1 wire code
and keeps everything above it httpx's: clients, adapters, `map_transport_errors` and the tracing
wrapper see an ordinary `httpx.AsyncBaseTransport`.

What it keeps as httpx's own transport has it:
- Bodies arrive byte-exact: aiohttp does not decompress (`auto_decompress=False`), so httpx
  decodes `Content-Encoding` itself, as it does over httpcore. aiohttp adds no header httpx did
  not set, keeps no cookies (httpx's client has its own jar) and follows no redirects.
- Per-request timeouts from the `timeout` extension: connect → `sock_connect`, pool + connect →
  `connect` (aiohttp's wait for a pooled or new connection), read → `sock_read`. aiohttp has no
  write timeout. A new connection (resolve, connect, TLS) is bounded by `sock_connect` as every
  transport bounds a connect (`connect_within`: not across a stall of the loop), not by
  aiohttp's own timer, which fails a socket connected while the loop was held up. aiohttp's
  `connect` timer (pool + connect, the call's whole time as adapters set it) still spans it: a
  stall longer than that fails it.
- aiohttp errors become the httpx errors httpx would raise (`_to_httpx`), so
  `map_transport_errors` stays the one boundary. `CancelledError` is never caught.
- Closing a response body releases a fully read connection to the pool and closes one that was
  not, so an abandoned stream closes the upstream connection.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.tracing import Trace
from yarl import URL

from router_service._connect_deadline import connect_within

__all__ = ["AiohttpTransport"]

# Hostname lookups are cached this long; httpcore caches none, aiohttp's default is 10 s.
DNS_CACHE_TTL_S = 60
# Response header limits near httpcore's (h11 with a 100 KiB header block) rather than aiohttp's
# 8 KiB per line.
_MAX_HEADER_BYTES = 100 * 1024
# Headers aiohttp would add when httpx's request lacks them; httpx decides the header set.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None)
_HTTP_VERSIONS = {(1, 1): b"HTTP/1.1", (1, 0): b"HTTP/1.0"}


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class AiohttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over aiohttp. The session is created on the first request (aiohttp binds it to
    the running loop); `aclose` closes it, is idempotent, and the transport cannot reopen."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry_s: float,
        verify: ssl.SSLContext | bool = True,
        dns_cache_ttl_s: int = DNS_CACHE_TTL_S,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry_s = keepalive_expiry_s
        self._verify = verify
        self._dns_cache_ttl_s = dns_cache_ttl_s
        self._session: aiohttp.ClientSession | None = None
        self._state = _State.UNOPENED

    def _open(self) -> aiohttp.ClientSession:
        if self._state is _State.CLOSED:
            raise RuntimeError("the transport is closed and cannot be reopened")
        verify = self._verify
        # The same trust store httpx would use (certifi), not the system's.
        context = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        connector = _Connector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry_s,
            ttl_dns_cache=self._dns_cache_ttl_s,
            ssl=context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NO_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
            timeout=_NO_TIMEOUT,
            max_line_size=_MAX_HEADER_BYTES,
            max_field_size=_MAX_HEADER_BYTES,
        )
        self._state = _State.OPENED
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session if self._session is not None else self._open()
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=_request_headers(request),
                data=_request_body(request),
                allow_redirects=False,
                timeout=_timeout(request.extensions.get("timeout")),
            )
        except _MAPPED_ERRORS as exc:
            raise _to_httpx(exc, request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=AiohttpResponseStream(response),
            extensions={
                "http_version": _HTTP_VERSIONS.get(response.version or (1, 1), b"HTTP/1.1"),
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, a new connection timed by `connect_within` for `sock_connect` (a
    TimeoutError past it, which aiohttp's client raises as its connection timeout)."""

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109  # aiohttp's own signature
    ) -> ResponseHandler:
        if timeout.sock_connect is None:
            return await super()._create_connection(req, traces, timeout)
        unbounded = aiohttp.ClientTimeout(  # all but sock_connect
            total=timeout.total,
            connect=timeout.connect,
            sock_read=timeout.sock_read,
            ceil_threshold=timeout.ceil_threshold,
        )
        connecting = super()._create_connection(req, traces, unbounded)
        return await connect_within(connecting, timeout.sock_connect)


class AiohttpResponseStream(httpx.AsyncByteStream):
    """A response body as aiohttp receives it (no decoding). `aclose` hands a fully read
    connection back to the pool and closes any other, so the upstream sees an abandoned body as
    a disconnect. It does not keep the request: a stream is open for as long as the model
    writes, and the request holds the whole encoded prompt (a mid-body error names none)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._response.content.readany
        while True:
            try:
                chunk = await read()
            except _MAPPED_ERRORS as exc:
                raise _to_httpx(exc, None) from exc
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            response.close()


def _request_headers(request: httpx.Request) -> list[tuple[str, str]]:
    """httpx's headers as it would send them (names in their own case). Without a length,
    aiohttp sends a stream chunked by itself and refuses to be told so."""
    encoding = request.headers.encoding
    headers = [(k.decode(encoding), v.decode(encoding)) for k, v in request.headers.raw]
    if isinstance(request.stream, httpx.ByteStream):
        return headers
    return [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]


def _request_body(request: httpx.Request) -> bytes | AsyncIterator[bytes] | None:
    """The body as aiohttp takes it: bytes when httpx holds them, else the stream as it comes."""
    if isinstance(request.stream, httpx.ByteStream):
        return request.content or None
    return _stream_body(request)


async def _stream_body(request: httpx.Request) -> AsyncIterator[bytes]:
    assert isinstance(request.stream, httpx.AsyncByteStream)
    async for part in request.stream:
        yield part


def _timeout(timeout: Mapping[str, float | None] | None) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts (the `timeout` extension) in aiohttp's terms."""
    if timeout is None:
        return _NO_TIMEOUT
    connect, pool = timeout.get("connect"), timeout.get("pool")
    # aiohttp's `connect` covers waiting for a pooled connection and opening a new one.
    waiting = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(
        total=None, connect=waiting, sock_connect=connect, sock_read=timeout.get("read")
    )


# TimeoutError is asyncio.TimeoutError on 3.11: what aiohttp raises for an overall deadline.
_MAPPED_ERRORS = (aiohttp.ClientError, TimeoutError)
# How aiohttp names, in a payload error's message, the error that cut the connection.
_CONNECTION_LOST = ("ConnectionResetError(", "ConnectionAbortedError(", "BrokenPipeError(")


def _to_httpx(exc: BaseException, request: httpx.Request | None) -> httpx.HTTPError:
    """The httpx error httpx's own transport raises in the same situation (the tests compare
    them scenario by scenario against the fake upstream)."""
    message = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, TimeoutError):  # SocketTimeoutError (sock_read) among them
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.ClientPayloadError):
        # An incomplete body: the connection was reset (httpx: ReadError) or closed early.
        reset = any(name in message for name in _CONNECTION_LOST)
        kind = httpx.ReadError if reset else httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        # Closed before the response, or a response that does not parse.
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ClientConnectionError):  # reset, broken pipe, closed
        kind = httpx.ReadError
    elif isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        kind = httpx.UnsupportedProtocol
    else:
        kind = httpx.TransportError
    return kind(message, request=request)
