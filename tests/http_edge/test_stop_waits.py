"""An edge's stop waits for its connections and requests themselves, not for time to pass
(`http_edge/_server.py`): uvicorn's own stop slept 0.1 s after asking its connections to close
and then checked every 0.1 s whether they had, so every edge's stop took at least 0.1 s.

Checked with the loop's clock standing still: no timer comes due, so a stop that sleeps or
polls never ends, while one woken by its connections and requests leaving does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.helpers import eventually
from tests.http_edge.edge_messages import completion, route
from tests.http_edge.harness import Edge, StubRouter, stop_edge

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
HANG_GUARD_S = 15.0  # real seconds: a bound on a stop that waits for the clock, not a measure


async def _stopped_with_the_clock_still(
    edge: Edge, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object] = lambda: None
) -> bool:
    """Whether the edge's stop ends while the loop's clock stands still (its timers never due),
    `meanwhile` called as it begins; the clock runs again afterwards, and the stop is seen to its
    end either way."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    with monkeypatch.context() as frozen:
        frozen.setattr(loop, "time", lambda: now)
        stopping = asyncio.ensure_future(stop_edge(edge))
        meanwhile()
        ended = threading.Event()
        stopping.add_done_callback(lambda _: ended.set())
        # Waited in a thread, on the real clock: the loop's would not end the wait.
        await loop.run_in_executor(None, ended.wait, HANG_GUARD_S)
        stopped = stopping.done()
    await stopping
    return stopped


async def test_an_idle_edge_stops_without_waiting_for_the_clock(
    edge: Edge, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await http.get("/healthz")).status_code == 200  # its connection left open, idle
    assert await _stopped_with_the_clock_still(edge, monkeypatch)


async def test_a_stop_ends_as_the_answer_under_way_is_sent(
    stub: StubRouter, edge: Edge, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = asyncio.Event()

    async def on_chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
        await answer.wait()
        return rs.ChatResponse(completion=completion("Hello!"), route=route())

    stub.on_chat = on_chat
    asking = asyncio.ensure_future(http.post("/v1/chat/completions", json=BODY))

    async def arrived() -> bool:
        return bool(stub.calls)

    await eventually(arrived, what="the call at the router")
    # The stop waits for the open request, which the router answers once the stop has begun.
    assert await _stopped_with_the_clock_still(edge, monkeypatch, answer.set)
    response = await asking
    assert response.json()["choices"][0]["message"]["content"] == "Hello!"
    assert response.headers["connection"] == "close"
