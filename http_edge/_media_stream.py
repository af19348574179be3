"""Media answered as the upstream streams it (RouterService.MediaStream): speech's audio bytes as
they arrive (chunked transfer), and the events of speech's `stream_format: "sse"`, of
transcriptions' and images' `stream: true`, each as OpenAI writes it (`event:` named when the
upstream named it: `image_generation.partial_image`; a `data:` line alone otherwise).

As a chat stream: HTTP 200 is committed only once the first piece arrived (a failure before it
is a real HTTP error), the caller leaving cancels the router call (and the upstream's), and a
failure after the commit is an OpenAI error event (`data: {"error": ...}`). Audio bytes have no
room for an event: a failure after the commit cuts the body short (the connection closes before
the chunked body's end), which an HTTP client reads as an incomplete answer, never a whole one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.responses import Response

from clients import RouterError
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1.router_service_pb2 import MediaStreamRequest, MediaStreamResponse

from ._cuts import cut_on_purpose
from ._headers import route_headers
from ._metadata import forwarded_metadata, routing_options
from ._routes_chat import (
    open_head,
    router_error_event,
    stream_error_event,
    truncated_event,
)
from ._sse import KEEPALIVE, SSEResponse
from ._state import edge_state
from ._stream_failure import failed_by, failed_with, truncated

__all__ = ["media_stream_response"]

logger = logging.getLogger(__name__)

_EVENT_STREAM = "text/event-stream"


async def media_stream_response(request: Request, params: media_pb2.MediaParams) -> Response:
    """Open the router's media stream, commit once its first piece arrived, relay the rest."""
    state = edge_state(request)
    call = MediaStreamRequest(params=params, routing=routing_options(request))
    stream = state.router().media_stream(
        call, timeout=state.settings.request_timeout_s, metadata=forwarded_metadata(request)
    )
    events, head = await open_head(request, stream)
    first = head.first
    kind = first.chunk.content_type or _EVENT_STREAM
    if kind.split(";", 1)[0].strip().lower() == _EVENT_STREAM:
        body, kind = _relay_events(events, first), _EVENT_STREAM
    else:
        body = _relay_bytes(events, first)
    return SSEResponse(
        body,
        on_close=stream.aclose,
        interrupt=stream.interrupt,
        headers=route_headers(head.route),
        media_type=kind,
    )


def _event_bytes(chunk: media_pb2.MediaChunk) -> bytes:
    data = b"data: " + chunk.event_json.encode() + b"\n\n"
    return b"event: " + chunk.event.encode() + b"\n" + data if chunk.event else data


async def _relay_events(
    events: AsyncIterator[MediaStreamResponse], first: MediaStreamResponse
) -> AsyncIterator[bytes]:
    """The router's messages as events, ending with an error event when the stream failed."""
    message: MediaStreamResponse | None = first
    try:
        while message is not None:
            kind = message.WhichOneof("event")
            if kind == "chunk":
                yield _event_bytes(message.chunk)
            elif kind == "heartbeat":
                yield KEEPALIVE
            elif kind == "error":
                yield stream_error_event(message.error)
                return
            elif kind == "summary":
                return
            message = await anext(events, None)
        yield truncated_event()
    except RouterError as exc:
        yield router_error_event(exc)


async def _relay_bytes(
    events: AsyncIterator[MediaStreamResponse], first: MediaStreamResponse
) -> AsyncIterator[bytes]:
    """The audio as it arrives; a failure cuts the body short (see the module's docstring)."""
    message: MediaStreamResponse | None = first
    # The stream's end without a summary: truncated, or the caller left (said nowhere: the
    # router records both; `SSEResponse` forgets a departed caller's).
    failure = ""
    try:
        while message is not None:
            kind = message.WhichOneof("event")
            if kind == "chunk":
                yield message.chunk.data
            elif kind == "summary":
                return
            elif kind == "error":
                failure = message.error.message
                failed_with(message.error)
                break
            message = await anext(events, None)
        else:
            truncated()
    except RouterError as exc:
        failure = exc.details.message
        failed_by(exc)
    if failure:
        logger.warning("speech cut short after the commit: %s", failure)
    cut_on_purpose()  # said above (or the caller left): not uvicorn's ERROR of the app
    # An OSError ends the response without its last chunk (SSEResponse: the client went away).
    raise ConnectionAbortedError(failure)
