"""A streamed background response as SSE: the router's `ResumeResponse` events, each as OpenAI
sends it (`event: <type>`, `data: <event>` with its `sequence_number`), and no `[DONE]` (a
Responses stream ends with its last event). Used by `POST /v1/responses` with `background` and
`stream` (from the first event) and by `GET /v1/responses/{id}?stream=true&starting_after=N`.

As the chat route's streams, HTTP 200 is committed only once the first event arrived: a
refusal (an unknown response, one not streamed) is a real HTTP error. A resume past the
stream's end (`starting_after` its last event: the caller lost its connection as that came) is
an empty stream, as the router's. The router's heartbeats (`streams.heartbeat_s` without an
event) are SSE comments (`: keepalive`), as a live stream's. The caller leaving ends
the router call (its watch of the events with it), never the response, which runs on (but a
create's caller that left before the first event, so without its id: `_started_stream`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import Request
from starlette.responses import Response

from clients import RouterClient, RouterError
from clients.switchboard.v1.router_service_pb2 import (
    ResumeResponseRequest,
    ResumeResponseResponse,
)

from ._disconnect import unless_disconnected
from ._errors import EdgeError, router_error_body
from ._metadata import Metadata
from ._sse import KEEPALIVE, SSE_HEADERS, SSEResponse, named_event
from ._stream_failure import failed_by

__all__ = ["resumed_stream"]


async def resumed_stream(
    request: Request,
    client: RouterClient,
    response_id: str,
    starting_after: int | None,
    metadata: Metadata,
    *,
    created: bool = False,
) -> Response:
    """The response's events after `starting_after` (None: all), then the live ones, as SSE.
    `created`: the create's own stream, whose caller has not its id yet: committed on its first
    event (`response.created`), never on a heartbeat before it (the router's store slow), which
    would leave a caller leaving then a response it cannot reach (`_started_stream`)."""
    call = ResumeResponseRequest(id=response_id)
    if starting_after is not None:
        call.starting_after = starting_after
    # No deadline: the response's own time limit (responses.background_timeout_s) ends it.
    stream = client.resume_response(call, timeout=None, metadata=metadata)
    try:
        events = aiter(stream)
        reading = _first(events, starting_after, created)
        first = await unless_disconnected(request, reading, stream.interrupt)
    except BaseException:
        await stream.aclose()
        raise
    if first is None:  # its end was at or before `starting_after`: nothing more to send
        await stream.aclose()
        return Response(b"", media_type="text/event-stream", headers=SSE_HEADERS)
    return SSEResponse(_relay(events, first), on_close=stream.aclose, interrupt=stream.interrupt)


async def _first(
    events: AsyncIterator[ResumeResponseResponse], starting_after: int | None, created: bool
) -> ResumeResponseResponse | None:
    """The stream's first message; None: it ended at once, after `starting_after`. Raised
    here, in the read `unless_disconnected` watches, an end with nothing sent is the caller's
    leaving when it left (its read interrupted: a 499), not the router's cut (a 502), which
    `_started_stream` would take for a refusal and cancel the response for. `created`: the
    heartbeats before the first event are skipped."""
    first = await anext(events, None)
    while created and first is not None and first.HasField("heartbeat"):
        first = await anext(events, None)
    if first is None and starting_after is None:
        raise EdgeError(
            502,
            "The router ended the stream before sending anything.",
            code="stream_truncated",
            type="upstream_error",
        )
    return first


async def _relay(
    events: AsyncIterator[ResumeResponseResponse], first: ResumeResponseResponse
) -> AsyncIterator[bytes]:
    message: ResumeResponseResponse | None = first
    sequence = -1
    try:
        while message is not None:
            if message.HasField("heartbeat"):  # a long silent run: no reader's timeout ends it
                yield KEEPALIVE
                message = await anext(events, None)
                continue
            event = orjson.loads(message.event_json)
            sequence = int(event["sequence_number"])
            yield named_event(event)
            message = await anext(events, None)
    except RouterError as exc:  # committed: told as OpenAI's `error` event
        failed_by(exc)
        body = router_error_body(exc.details)["error"]
        error = {
            "type": "error",
            "sequence_number": sequence + 1,
            "code": body.get("code") or body.get("type"),
            "message": str(body.get("message", "")),
            "param": body.get("param"),
        }
        yield named_event(error)
