"""The one SSE parser every adapter uses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._sse import SseEvent, json_events, sse_events


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _events(*lines: str) -> list[SseEvent]:
    return [e async for e in sse_events(_lines(*lines))]


async def test_events_are_dispatched_at_blank_lines() -> None:
    events = await _events(
        ": a comment",
        "event: message_start",
        'data: {"a": 1}',
        "",
        "data: first",
        "data:second",  # no space after the colon
        "",
        "",
        "id: 7",  # fields we do not use are ignored
        "data: tail without a blank line",
    )
    assert events == [
        SseEvent("message_start", '{"a": 1}'),
        SseEvent("", "first\nsecond"),
        SseEvent("", "tail without a blank line"),
    ]


async def test_an_event_name_does_not_leak_into_the_next_event() -> None:
    events = await _events("event: ping", "data: {}", "", "data: {}", "")
    assert [e.event for e in events] == ["ping", ""]


def _response(body: bytes) -> httpx.Response:
    return httpx.Response(200, stream=httpx.ByteStream(body))


async def test_json_events_stop_at_done() -> None:
    body = b'event: x\ndata: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\ndata: {"n": 3}\n\n'
    events = [e async for e in json_events(_response(body))]
    assert events == [("x", {"n": 1}), ("", {"n": 2})]


@pytest.mark.parametrize("payload", [b"data: not json\n\n", b"data: [1, 2]\n\n"])
async def test_a_payload_that_is_not_an_object_is_the_upstreams_failure(payload: bytes) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        [e async for e in json_events(_response(payload))]
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR
