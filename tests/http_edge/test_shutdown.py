"""Stopping an edge process (`switchboard edge`): SIGTERM lets open streams finish, then the
process exits 0 (router_service/cli.py `until_terminated`, uvicorn's graceful shutdown)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.helpers import eventually, free_port

pytestmark = pytest.mark.timeout(60)

STARTUP_S = 30.0
EXIT_S = 15.0  # far above what the exit takes: a bound on a hang


async def test_sigterm_lets_an_open_stream_finish_then_the_edge_exits_zero(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path
) -> None:
    fake.state.set_scenario(Scenario(chunks=30, chunk_interval_ms=100))  # ~3 s of stream
    port = free_port()
    log = tmp_path / "edge.log"
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
            body = {
                "model": "chain",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                events = response.aiter_lines()
                assert (await anext(events)).startswith("data: {")  # the stream is under way
                process.send_signal(signal.SIGTERM)

                async def refuses() -> bool:
                    try:
                        async with httpx.AsyncClient(timeout=2) as other:
                            await other.get(f"http://127.0.0.1:{port}/healthz")
                    except httpx.TransportError:
                        return True
                    return False

                await eventually(refuses, within=10, what="new connections refused")
                rest = [line async for line in events if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]" and len(rest) >= 30  # whole, not cut
        assert not any('"error"' in line for line in rest)
        assert await asyncio.wait_for(process.wait(), EXIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "Traceback" not in log.read_text()
