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
from aiohttp import web

from benchmarks._systems import REPO
from tests.helpers import serve_app

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """Streams by `?kind=`: refused (503), empty (a comment, then the end), held (one event,
    then open until the test is over)."""
    over = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        kind = request.query["kind"]
        if kind == "refused":
            return web.Response(status=503, text="no")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        if kind == "empty":
            await response.write(b": a comment, then the end\n\n")
        else:
            await response.write(b'data: {"first": true}\n\n')
            await over.wait()
        return response

    app = web.Application()
    app.router.add_post("/stream", stream)
    async with serve_app(app) as base:
        try:
            yield f"{base}/stream"
        finally:
            over.set()


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
