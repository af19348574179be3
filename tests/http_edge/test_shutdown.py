"""Signals to an edge process (`switchboard edge`): SIGTERM lets open streams finish, then the
process exits 0 (router_service/cli.py `until_terminated`, uvicorn's graceful shutdown); SIGHUP,
which asks a router to reload, is logged and the edge serves on (`_edge_sighup`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

import http_edge
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.helpers import eventually, free_port
from tests.http_edge.harness import StubRouter

pytestmark = pytest.mark.timeout(60)

STARTUP_S = 30.0
EXIT_S = 15.0  # far above what the exit takes: a bound on a hang


@asynccontextmanager
async def edge_process(
    router: RouterHandle, log: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, httpx.AsyncClient]]:
    """`switchboard edge` in a process of its own, ready, and a client for it; killed if the
    test left it running."""
    port = free_port()
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router_service", "edge",
            "--router", router.server.address, "--port", str(port),
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=STARTUP_S, what="the edge answers")
            yield process, client
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


STREAM = {"model": "chain", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}


async def test_sigterm_lets_an_open_stream_finish_then_the_edge_exits_zero(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path
) -> None:
    # Held after two pieces until the edge refuses new connections: under way while it drains,
    # however slow the machine (pieces 100 ms apart left ~3 s that it could spend first).
    fake.state.set_scenario(Scenario(chunks=30, held_after_chunks=2))
    log = tmp_path / "edge.log"
    async with edge_process(router, log) as (process, client):
        async with client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
            assert response.status_code == 200
            events = response.aiter_lines()
            assert (await anext(events)).startswith("data: {")  # the stream is under way
            process.send_signal(signal.SIGTERM)

            async def refuses() -> bool:
                try:
                    async with httpx.AsyncClient(timeout=2) as other:
                        await other.get(client.base_url.join("/healthz"))
                except httpx.TransportError:
                    return True
                return False

            await eventually(refuses, within=10, what="new connections refused")
            fake.state.release()
            rest = [line async for line in events if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]" and len(rest) >= 30  # whole, not cut
        assert not any('"error"' in line for line in rest)
        assert await asyncio.wait_for(process.wait(), EXIT_S) == 0
    text = log.read_text()
    assert "Traceback" not in text
    # One SIGTERM is one stop: nothing was cut (uvicorn, had it taken the signal too, would
    # raise it again once drained, and the process would say it was asked twice).
    assert text.count("SIGTERM") == 1 and "again" not in text, text


async def test_sighup_is_logged_and_the_edge_serves_on(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path
) -> None:
    fake.state.set_scenario(Scenario(chunks=10, held_after_chunks=2))  # open across the SIGHUP
    log = tmp_path / "edge.log"
    async with edge_process(router, log) as (process, client):
        async with client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
            events = response.aiter_lines()
            assert (await anext(events)).startswith("data: {")
            process.send_signal(signal.SIGHUP)

            async def logged() -> bool:
                return "SIGHUP: the edge does not reload its settings" in log.read_text()

            await eventually(logged, within=10, what="the SIGHUP log line")
            fake.state.release()
            rest = [line async for line in events if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]" and not any('"error"' in line for line in rest)
        assert process.returncode is None
        assert (await client.get("/readyz")).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), EXIT_S) == 0


async def test_the_cut_a_second_stop_begins_is_seen_through_by_a_later_one(
    stub: StubRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """`serve`'s second stop begins the router's stop without grace (`cut`); a third and a
    fourth (an operator holding Ctrl-C) end the edge's wait for open requests, but never that
    stop: left behind, the loop's end would cancel it mid-way (leases not given back, the
    runtime not closed)."""
    # A plain call held open at the router: the request the drain waits for until the third
    # stop. (The stream it held before had ended by the time the stop began: the drain lasted
    # only uvicorn's fixed 0.1 s sleep, gone from the edge's stop.)
    held = asyncio.Event()

    async def on_chat(request: Any, context: Any) -> Any:
        await held.wait()  # only a release ends it
        await context.abort(grpc.StatusCode.UNAVAILABLE, "released")

    stub.on_chat = on_chat
    cut_begun, cut_may_end, ends = asyncio.Event(), asyncio.Event(), []

    async def cut() -> None:
        cut_begun.set()
        await cut_may_end.wait()
        ends.append("cut")

    caplog.set_level(logging.INFO, logger="uvicorn.error")
    port = free_port()
    settings = http_edge.EdgeSettings(router_target=stub.target)
    task = asyncio.create_task(http_edge.serve(settings, port=port, signals=False, cut=cut))
    task.add_done_callback(lambda _: ends.append("serve"))

    def holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
        async def held_now() -> bool:
            return check()

        return held_now

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        await eventually(lambda: _answers(client), within=STARTUP_S, what="the edge answers")
        asking = asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT))
        await eventually(holds(lambda: bool(stub.calls)), what="the call at the router")
        task.cancel()  # the first stop: the edge drains
        await eventually(holds(lambda: "Shutting down" in caplog.text), what="a drain")
        task.cancel()  # the second: the cut begins
        await eventually(holds(cut_begun.is_set), what="the cut")
        task.cancel()  # the third: the edge waits no more for its open request
        down = "Finished server process"
        await eventually(holds(lambda: down in caplog.text), what="the edge down")
        for _ in range(3):
            await asyncio.sleep(0)  # `serve` sees it: only the cut is left to wait for
        task.cancel()  # the fourth, while the cut is still under way
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()  # still waiting for the cut
        cut_may_end.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        held.set()
        await asyncio.gather(asking, return_exceptions=True)
    assert ends == ["cut", "serve"]


async def _answers(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False
