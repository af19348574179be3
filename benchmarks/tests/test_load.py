"""The load generator's idle-streams mode (`_load.py`, kind `hold`), run as the bench runs it: a
process against a loopback server. A stream refused with an error status, or one whose body ends
before its first event, counts as failed at once (the second used to spin on end-of-file until
the open timeout); a stream that sent its first event is held until stdin closes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from benchmarks._systems import REPO
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(60)


async def _held() -> AsyncIterator[bytes]:
    yield b'data: {"first": true}\n\n'
    await asyncio.Event().wait()  # held open until the client goes


async def _stream(request: Request) -> Response:
    kind = request.query_params["kind"]
    if kind == "refused":
        return Response("no", status_code=503)
    if kind == "empty":
        return StreamingResponse(iter([b": a comment, then the end\n\n"]))
    return StreamingResponse(_held(), media_type="text/event-stream")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/stream", _stream, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())

    async def started() -> bool:
        return running.started

    await eventually(started, what="the loopback server started")
    port = running.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/stream"
    finally:
        running.should_exit = True
        await task


async def _hold(url: str, concurrency: int) -> dict[str, Any]:
    spec = {
        "kind": "hold",
        "url": url,
        "concurrency": concurrency,
        "body": {"model": "m", "stream": True},
        "open_timeout_s": 30,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks._load",
        json.dumps(spec),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    line = await asyncio.wait_for(child.stdout.readline(), 30)  # printed once all are settled
    child.stdin.close()  # the orchestrator has measured: let go of the streams
    _, stderr = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, stderr.decode()[-2000:]
    report: dict[str, Any] = json.loads(line)
    return report


@pytest.mark.parametrize("kind", ["refused", "empty"])
async def test_a_stream_that_never_starts_fails_at_once(server: str, kind: str) -> None:
    report = await _hold(f"{server}?kind={kind}", 3)
    assert (report["open"], report["failed"]) == (0, 3)
    assert report["open_s"] < 25  # not the open timeout
    expected = "HTTP 503" if kind == "refused" else "ended before its first event"
    assert expected in str(report["error_samples"])


async def test_started_streams_are_held_open(server: str) -> None:
    report = await _hold(f"{server}?kind=held", 4)
    assert (report["open"], report["failed"]) == (4, 0)
