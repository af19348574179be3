"""Server-sent events from an upstream response: one parser for every adapter.

Follows the event-stream grammar of the HTML standard
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
`data:` lines of one event are joined with newlines, `event:` names it, lines starting with `:` are
comments, and a blank line dispatches the event. A last event without its blank line is still
dispatched when the stream ends (providers cut streams short; the adapter decides if that is
truncation). OpenAI's `data: [DONE]` sentinel ends the iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._http import map_transport_errors

DONE = "[DONE]"


# After `[DONE]` only the stream's end is left to read. Reading it lets the connection go back to
# the pool instead of being closed (a new TCP connection per stream otherwise); an upstream that
# keeps talking or stays silent is cut off instead.
_DRAIN_LINES = 16
_DRAIN_S = 0.5


async def _drain(lines: AsyncIterator[str]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DRAIN_S):
            read = 0
            async for _ in lines:
                read += 1
                if read >= _DRAIN_LINES:
                    return


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "" when the upstream named none ("message" in the standard)
    data: str


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Events from the decoded lines of an event stream."""
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield SseEvent(event, "\n".join(data))


async def json_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON object) per event of a streaming response, until `[DONE]` or the end.

    Transport failures are translated (the response had started: a broken connection is a
    mid-stream failure); a payload that is not a JSON object is the upstream's fault."""
    with map_transport_errors(started=True):
        lines = response.aiter_lines()
        async for sse in sse_events(lines):
            payload = sse.data.strip()
            if payload == DONE:
                await _drain(lines)
                return
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed stream event")
            yield sse.event, data
