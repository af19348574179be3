"""httpx's own transport (`http.transport: httpx`) with its connects timed as every transport's
are (`connect_within`: not across a stall of the router's own loop).

httpcore times a connect and its TLS handshake each with anyio's `fail_after`. The connect runs
in a task of anyio's own (happy eyeballs), so a loop held up past the connect timeout wakes to the
timer cancelling a connect whose socket was connected meanwhile: CONNECT_FAILED for an upstream
that answered in time. Its network backend here (`ConnectWithinBackend`) leaves httpcore's steps
as they are and times each with `connect_within` instead."""

from __future__ import annotations

import ssl
import typing
from collections.abc import Iterable

import httpcore
import httpx

from router_service._connect_deadline import connect_within

__all__ = ["ConnectWithinBackend", "httpx_transport"]


def httpx_transport(
    limits: httpx.Limits, *, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncHTTPTransport:
    """httpx's transport over httpcore's pool, its connects made by `ConnectWithinBackend`."""
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    # httpx passes httpcore no backend (it takes its default); the pool hands its own to every
    # connection it opens.
    transport._pool._network_backend = ConnectWithinBackend()
    return transport


class ConnectWithinBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, a connect and a TLS handshake each timed by `connect_within`
    (httpcore.ConnectTimeout past it, as httpcore's own timer raises)."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's own signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connecting = self._backend.connect_tcp(host, port, None, local_address, socket_options)
        try:
            stream = await connect_within(connecting, timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connect timed out after {timeout:g} s") from None
        return _Connected(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's own signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _Connected(httpcore.AsyncNetworkStream):
    """A connected stream whose TLS handshake `connect_within` times. The TLS stream it gives
    is httpcore's own (an https connection reads and writes with no layer of this one's)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's own signature
    ) -> httpcore.AsyncNetworkStream:
        handshake = self._stream.start_tls(ssl_context, server_hostname, None)
        try:
            return await connect_within(handshake, timeout)
        except BaseException as exc:
            # httpcore's stream closes itself on a failed handshake, not on a cancel: neither
            # this timeout's nor the call's (a caller gone, a deadline passed), and httpcore
            # closes no connection it did not finish; anyio's `aclose` aborts the socket at once.
            await self._stream.aclose()
            if isinstance(exc, TimeoutError):
                message = f"TLS handshake timed out after {timeout:g} s"
                raise httpcore.ConnectTimeout(message) from None
            raise

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)
