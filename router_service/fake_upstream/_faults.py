"""Applying a Scenario to one call: delays, stalls, resets, error replies and faulty streams."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
from aiohttp import web

from ._dialects import OPENAI, Dialect
from ._scenario import Scenario
from ._state import CallRecord, FakeUpstreamState

NO_FAULTS = Scenario()


@dataclass
class Call:
    """One in-flight request with the scenario chosen for it."""

    request: web.Request
    state: FakeUpstreamState
    record: CallRecord
    scenario: Scenario
    body: dict[str, Any]
    # The provider whose words errors are said in (error bodies, wrapped errors).
    dialect: Dialect = OPENAI

    def mark(self, **changes: Any) -> None:
        """Update the record and wake waiters, so tests observe every step as it happens."""
        for name, value in changes.items():
            setattr(self.record, name, value)
        self.state.notify()

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": f"req_fake_{self.record.seq}",
            **self.dialect.reply_headers(self.scenario),
            **self.scenario.headers,
        }
        if self.scenario.retry_after is not None:
            headers["Retry-After"] = self.scenario.retry_after
        return headers

    @property
    def ok_status(self) -> int:
        # A non-error scenario status (e.g. 203) overrides the status of a normal answer.
        status = self.scenario.status
        return status if status is not None and status < 400 else 200


async def sleep_ms(ms: float | None) -> None:
    if ms:
        await asyncio.sleep(ms / 1000.0)


async def wait_forever() -> NoReturn:
    # Ends only by cancellation: aiohttp cancels the handler when the client goes away
    # (handler_cancellation=True) and FakeUpstream.aclose() cancels it on shutdown.
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


def abort_connection(request: web.Request) -> None:
    """Drop the TCP connection with an RST, like a crashed provider or a middlebox reset."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0 makes close() send RST instead of FIN, so clients see ECONNRESET.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def send_json(
    call: Call, status: int, payload: Any, outcome: str, extra: Mapping[str, str] | None = None
) -> web.StreamResponse:
    """Send a complete JSON response inside the handler, so status/completion are recorded
    accurately and a disconnect during the write surfaces here (as ConnectionError). `extra`:
    headers of the answer itself (a count the provider sends beside the body)."""
    headers = call.headers() | dict(extra or {})
    if status >= 400 and isinstance(payload, dict):
        headers |= call.dialect.error_headers(status, payload)
    resp = web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers=headers,
    )
    await resp.prepare(call.request)
    call.mark(status=status)
    await resp.write_eof()
    call.mark(completed=True, outcome=outcome)
    return resp


async def send_answer(
    call: Call, payload: Any, extra: Mapping[str, str] | None = None
) -> web.StreamResponse:
    """Send a normal (non-stream) answer, applying the body-level faults.

    Without SSE events to count, stall/reset/truncate_after_chunks mean: send the headers
    (with the full Content-Length), then stall / reset / send half the body and close.
    """
    sc = call.scenario
    body_faults = (sc.truncate_after_chunks, sc.stall_after_chunks, sc.reset_after_chunks)
    if all(n is None for n in body_faults):
        return await send_json(call, call.ok_status, payload, "ok", extra)
    body = orjson.dumps(payload)
    resp = web.StreamResponse(status=call.ok_status, headers=call.headers() | dict(extra or {}))
    resp.content_type = "application/json"
    resp.content_length = len(body)
    await resp.prepare(call.request)
    call.mark(status=resp.status)
    if sc.truncate_after_chunks is not None:
        await resp.write(body[: len(body) // 2])
        if call.request.transport is not None:
            call.request.transport.close()  # FIN before Content-Length is reached
        call.mark(completed=True, outcome="truncated")
        return resp
    if sc.stall_after_chunks is not None:
        call.mark(outcome="stalled")
        await wait_forever()
    abort_connection(call.request)
    call.mark(outcome="reset")
    return resp


async def send_error(call: Call, status: int, message: str, outcome: str) -> web.StreamResponse:
    return await send_json(call, status, call.dialect.error_body(status, message), outcome)


async def pre_response(call: Call, stream: bool) -> web.StreamResponse | None:
    """Faults that happen before any normal answer; returns the response if one was decided."""
    sc = call.scenario
    await call.state.gate()  # answers held by the test (FakeUpstreamState.hold)
    if not stream or sc.is_error or sc.reset_before_response:
        # For healthy streams latency is time-to-first-chunk, applied after the headers.
        await sleep_ms(sc.latency_ms)
    if sc.stall_before_first_byte or sc.stall_before_ms is not None:
        if sc.stall_before_ms is None:
            call.mark(outcome="stalled")
            await wait_forever()
        await sleep_ms(sc.stall_before_ms)
    if sc.reset_before_response:
        abort_connection(call.request)
        call.mark(outcome="reset")
        # aiohttp's attempt to send this on the aborted transport fails quietly.
        return web.Response()
    if sc.is_error:
        status, body = call.dialect.error_reply(sc)
        return await send_json(call, status, body, "error_status")
    if sc.blocked is not None:
        status, body = call.dialect.blocked_reply(sc.blocked)
        if status < 400 and stream:
            return await run_stream(call, call.dialect.blocked_events(body), 1)
        return await send_json(call, status, body, "blocked")
    if not stream and sc.wrapped_error is not None:
        return await send_json(call, 200, call.dialect.wrapped_body(sc), "wrapped_error")
    return None


def stream_plan(
    sc: Scenario, events: list[bytes], content_count: int, dialect: Dialect = OPENAI
) -> tuple[list[bytes], str]:
    """Events to send and how the stream ends ("ok" or the fault's outcome name).

    If several stream faults are set, the one that strikes first (fewest events before it) wins.
    `content_count` is how many events precede the one carrying the finish reason.
    """
    candidates: list[tuple[int, int, str]] = []
    if sc.wrapped_error is not None or sc.wrapped_error_at_chunk is not None:
        # The n-th event *is* the error, so n-1 normal events precede it (never past [DONE]).
        before = min(max(sc.wrapped_error_at_chunk or 1, 1) - 1, len(events) - 1)
        candidates.append((before, 0, "wrapped_error"))
    if sc.truncate_after_chunks is not None:
        # Truncation must never include the finish_reason chunk or [DONE].
        candidates.append((min(sc.truncate_after_chunks, content_count), 1, "truncated"))
    if sc.stall_after_chunks is not None:
        candidates.append((sc.stall_after_chunks, 2, "stalled"))
    if sc.reset_after_chunks is not None:
        candidates.append((sc.reset_after_chunks, 3, "reset"))
    if not candidates:
        return events, "ok"
    before, _, ending = min(candidates)
    if ending == "wrapped_error":
        return [*events[:before], dialect.wrapped_event(sc)], ending
    return events[:before], ending


async def run_stream(
    call: Call, events: list[bytes], content_count: int, content_type: str = ""
) -> web.StreamResponse:
    """`events` with the stream faults applied; `content_type`: the stream's, when it is not
    the dialect's event stream (speech's audio, sent in pieces)."""
    sc = call.scenario
    to_send, ending = stream_plan(sc, events, content_count, call.dialect)
    resp = web.StreamResponse(status=call.ok_status, headers=call.headers())
    resp.content_type = content_type or call.dialect.stream_content_type
    resp.headers["Cache-Control"] = "no-cache"
    await resp.prepare(call.request)
    call.mark(status=resp.status)
    await sleep_ms(sc.latency_ms)
    for index, event in enumerate(to_send):
        if index:
            await sleep_ms(sc.chunk_interval_ms)
            if sc.between_events is not None:
                await resp.write(sc.between_events.encode())
        if index == sc.held_after_chunks or 0 < index <= (sc.stepped_chunks or 0):
            await call.state.gate(always=True)  # under way until the test releases it
        await resp.write(event)
        call.mark(chunks_sent=call.record.chunks_sent + 1)
    if ending == "stalled":
        call.mark(outcome="stalled")
        while sc.between_events is not None:  # a server's pings go on while its model is stuck
            await sleep_ms(sc.chunk_interval_ms or 50.0)
            await resp.write(sc.between_events.encode())
        await wait_forever()
    if ending == "reset":
        abort_connection(call.request)
        call.mark(outcome="reset")
        return resp
    await resp.write_eof()
    call.mark(completed=True, outcome=ending)
    return resp


def note_cancelled(call: Call, shutting_down: bool) -> None:
    """Classify a cancelled handler: our own shutdown, or the client went away."""
    if shutting_down:
        call.mark(outcome="shutdown")
    elif call.record.outcome != "reset":
        call.mark(client_disconnected=True, outcome="client_disconnected")
