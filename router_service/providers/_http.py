"""The one boundary where httpx errors become Outcomes, and the shared upstream client."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager

import httpx

from router_service._masking import SCRUBBED_CHARS
from router_service.config import HttpConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._bounded_decode import decoded_within
from router_service.providers._lean_transport import LeanTransport, body_parts, read_whole
from router_service.telemetry import traced_transport

# The most of an upstream's error body that is read. What an error says is used up to
# SCRUBBED_CHARS a text and twice that in all (`UpstreamFailure.scrub`), 2 KiB of one that is
# not JSON (`root_error`): this holds that much text with room for the JSON around it. A body
# cut here is not JSON and is read as text (its status still classifies it).
ERROR_BODY_BYTES = 4 * SCRUBBED_CHARS
# The bounds a client that is not the router's own reads with (`HttpConfig`'s defaults).
_BODY_BYTES = HttpConfig.model_fields["max_response_bytes"].default
EVENT_BYTES = HttpConfig.model_fields["max_event_bytes"].default
# Where a streaming response carries its client's bounds, when not the defaults (`_bounds`).
_BOUNDS_KEY = "switchboard.body_bounds"


class UpstreamClient(httpx.AsyncClient):
    """The router's client for upstream APIs: an httpx client whose adapter calls go straight to
    its transport (`send_upstream`).

    httpx's `send` runs each request through the client's cookie jar, redirect loop, auth flow
    and event hooks, and `post` first merges URL, headers and cookies into a new request: about
    a tenth of the router's CPU per call in `benchmarks.profile`, for features an upstream call
    must not have anyway. An upstream's cookies must never ride along on a request made with
    another key, an API answering a POST with a redirect is a failure rather than something to
    follow, and the key is a header the adapter sets.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        reads_cancel_their_task: bool = True,
        body_bytes: int = _BODY_BYTES,
        event_bytes: int = EVENT_BYTES,
    ) -> None:
        # The client's own defaults stay for anyone using it as a plain httpx client; adapters
        # set the timeouts of each request themselves.
        super().__init__(transport=transport, timeout=httpx.Timeout(60.0), trust_env=False)
        self.upstream_transport = transport
        # Whether a read of this transport times out by cancelling the task it runs in (see
        # `reads_cancel_their_task`): false only for the transports known to time reads with
        # callbacks (lean, aiohttp).
        self.reads_cancel_their_task = reads_cancel_their_task
        # The most of a successful answer read (decoded), whole and per event of a stream.
        self.body_bytes, self.event_bytes = body_bytes, event_bytes


def reads_cancel_their_task(http: httpx.AsyncClient) -> bool:
    """Whether `http`'s reads time out by cancelling the task they run in, wherever that task
    is at the time (httpcore on anyio: a cancel scope), rather than by failing the read (the lean
    and aiohttp transports: a timer's callback). A stream read from such a client is read in a
    task of its own (StreamGuard): a timeout must end the read, not what the request's task is
    doing meanwhile. Any client but the router's own is taken to be one."""
    return not isinstance(http, UpstreamClient) or http.reads_cancel_their_task


async def send_upstream(
    http: httpx.AsyncClient, request: httpx.Request, *, stream: bool = False
) -> httpx.Response:
    """Send a request built by an adapter (method, URL, headers, body and the `timeout`
    extension all set). Streaming: the caller closes the response; otherwise the body is read,
    an error's (4xx, 5xx) no further than `ERROR_BODY_BYTES` (`read_error_body`).

    Any other httpx client (tests give adapters their own) sends it the ordinary way. A streaming
    response does not point back to its request: the body was sent, and a stream is held open
    for minutes (see `UpstreamStream`); nothing reads `response.request` or `response.url`."""
    if not isinstance(http, UpstreamClient):
        response = await http.send(request, stream=True)
        body_bytes, events = _BODY_BYTES, EVENT_BYTES
    else:
        body_bytes, events = http.body_bytes, http.event_bytes
        response = await http.upstream_transport.handle_async_request(request)
        if not stream:
            response.request = request
    if (body_bytes, events) != (_BODY_BYTES, EVENT_BYTES):  # defaults unsaid: no store
        response.extensions[_BOUNDS_KEY] = (body_bytes, events)
    if stream:
        return response
    if response.status_code >= 400:
        await read_error_body(response)
        return response
    try:
        await read_whole(response, body_bytes)
    finally:
        await response.aclose()
    return response


async def read_error_body(response: httpx.Response) -> bytes:
    """At most `ERROR_BODY_BYTES` of a refusal's body, which `response.content` then is: one
    that comes encoded read raw to that bound and decoded to it (`decoded_within`: not a chunk's
    whole expansion, a decompression bomb's); the response closed, and with it the connection
    when the body went on past that (not drained: an upstream answering 500 with a GiB is
    neither buffered nor read)."""
    encoding = response.headers.get("content-encoding", "")
    parts, size = [], 0
    # An encoded one raw: httpx's decoder would expand each chunk whole (`decoded_within`).
    read = response.aiter_raw() if encoding else body_parts(response)
    try:
        async for part in read:
            parts.append(part)
            size += len(part)
            if size >= ERROR_BODY_BYTES:
                break
    finally:
        if isinstance(read, AsyncGenerator):  # not left suspended for the GC to end
            await read.aclose()
        await response.aclose()
    content = b"".join(parts)[:ERROR_BODY_BYTES]
    if encoding:
        content = decoded_within(content, encoding, ERROR_BODY_BYTES)
    response._content = content  # as `aread` sets it: `response.content` reads it
    return content


def _bounds(response: httpx.Response) -> tuple[int, int]:
    bounds: tuple[int, int] = response.extensions.get(_BOUNDS_KEY, (_BODY_BYTES, EVENT_BYTES))
    return bounds


def event_bytes(response: httpx.Response) -> int:
    """The most one event of `response` may hold (`send_upstream`): a stream's, or an event
    stream's read whole (speech's `stream_format: "sse"`)."""
    return _bounds(response)[1]


async def whole_body(response: httpx.Response) -> bytes:
    """A streaming `response`'s body read whole (an answer that is not a stream after all),
    bounded as a unary one is (`read_whole`)."""
    await read_whole(response, _bounds(response)[0])
    return response.content


def create_http_client(config: HttpConfig, *, own_spans: bool = False) -> httpx.AsyncClient:
    """One client per process: connection reuse across every provider and request.
    `own_spans`: with tracing on, each request a span of its own (the config's
    `telemetry.upstream_http_spans`)."""
    limits = httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.max_keepalive_connections,
        keepalive_expiry=config.keepalive_expiry_s,
    )
    inner: httpx.AsyncBaseTransport
    if config.transport == "lean":
        inner = LeanTransport(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_keepalive_connections,
            keepalive_expiry_s=config.keepalive_expiry_s,
        )
    elif config.transport == "aiohttp":
        # Imported when chosen: aiohttp costs a process ~7 MiB it does not use otherwise.
        from router_service.providers._aiohttp_transport import AiohttpTransport

        inner = AiohttpTransport(
            max_connections=config.max_connections, keepalive_expiry_s=config.keepalive_expiry_s
        )
    else:
        # Imported when chosen, as aiohttp is: httpcore and anyio are loaded by nothing else.
        from router_service.providers._httpx_connect import httpx_transport

        inner = httpx_transport(limits)  # its connects timed as the others' (connect_within)
    # Per-request timeouts are set by each adapter call; these are only the defaults.
    # The client's aclose closes the transport: its idle connections (aiohttp: its session).
    cancelling = config.transport == "httpx"  # httpcore on anyio: cancel scopes
    traced = traced_transport(inner, own_spans=own_spans)
    return UpstreamClient(
        traced,
        reads_cancel_their_task=cancelling,
        body_bytes=config.max_response_bytes,
        event_bytes=config.max_event_bytes,
    )


@contextmanager
def map_transport_errors(*, started: bool = False) -> Iterator[None]:
    """Translate httpx transport errors. `started`: the response had begun arriving, so a broken
    connection is a mid-response failure rather than a failure to reach the upstream."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise UpstreamFailure(Outcome.CONNECT_FAILED, "connect timeout") from exc
    except httpx.ConnectError as exc:
        raise UpstreamFailure(Outcome.CONNECT_FAILED, f"connect failed: {_short(exc)}") from exc
    except httpx.TimeoutException as exc:
        outcome = Outcome.STALLED if started else Outcome.FIRST_CHUNK_TIMEOUT
        raise UpstreamFailure(outcome, f"upstream timeout: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        # Reset or closed connections, protocol errors: the upstream failed, not the caller.
        raise UpstreamFailure(
            Outcome.UPSTREAM_ERROR, f"connection error: {type(exc).__name__}"
        ) from exc


def _short(exc: Exception) -> str:
    return str(exc)[:120] or type(exc).__name__
