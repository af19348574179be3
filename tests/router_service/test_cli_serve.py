"""`switchboard serve`: the router and the edge in one process, the edge calling the router
in-process, the router's port still open to other callers; SIGTERM stops both, edge first."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import yaml

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import base_config
from tests.helpers import eventually, free_port
from tests.router_service.server.processes import EXIT_S, STARTUP_S


@dataclass
class Served:
    process: asyncio.subprocess.Process
    log: Path
    edge: str  # the edge's base URL
    router: str  # the router port's address


@contextlib.asynccontextmanager
async def serve_process(fake: FakeUpstream, tmp_path: Path, **server: Any) -> AsyncIterator[Served]:
    """`switchboard serve` on free loopback ports (`server`: more of that section), ready;
    killed at the end if it is still running."""
    router_port, edge_port = free_port(), free_port()
    config = base_config(
        fake.base_url,
        server={"host": "127.0.0.1", "port": router_port, **server},
        edge={"host": "127.0.0.1", "port": edge_port},
    )
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router_service", "serve", "-c", str(path),
            stdout=out, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{edge_port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:

            async def ready() -> bool:
                assert process.returncode is None, log.read_text()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=STARTUP_S, what="the edge ready")
        yield Served(process, log, base, f"127.0.0.1:{router_port}")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_answers_on_both_ports_and_stops_on_sigterm(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    async with serve_process(fake, tmp_path) as served:
        sdk = openai.AsyncOpenAI(base_url=f"{served.edge}/v1", api_key="sk-x", max_retries=0)
        async with sdk:
            answer = await sdk.chat.completions.create(
                model="chain", messages=[{"role": "user", "content": "hi"}]
            )
        assert answer.choices[0].message.content == "Echo: hi"
        async with grpc.aio.insecure_channel(served.router) as channel:
            stub = router_service_pb2_grpc.RouterServiceStub(channel)
            listed = await stub.ListModels(pb.ListModelsRequest(), timeout=5)
        assert "chain" in {model.id for model in listed.models}
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), EXIT_S) == 0
    text = served.log.read_text()
    assert "calls the router in-process" in text
    # The edge drained first, then the router.
    assert text.index("Application shutdown complete") < text.index("router stopped")


async def test_a_second_sigterm_stops_both_now(fake: FakeUpstream, tmp_path: Path) -> None:
    """As `router`'s: a second SIGTERM during the edge's drain cuts it, and the router's too
    (the open stream would otherwise hold the process for the router's whole grace)."""
    fake.state.set_scenario(Scenario(stall_after_chunks=2))  # only a stop ends this stream
    async with serve_process(fake, tmp_path, shutdown_grace_s=60) as served:
        body = {"model": "chain", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        async with (
            httpx.AsyncClient(base_url=served.edge, timeout=EXIT_S * 4) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("data: ")  # the stream is under way
            served.process.send_signal(signal.SIGTERM)

            async def edge_draining() -> bool:
                return "Shutting down" in served.log.read_text()

            await eventually(edge_draining, within=10, what="the edge's drain begun")
            served.process.send_signal(signal.SIGTERM)  # an operator who will not wait
            assert await asyncio.wait_for(served.process.wait(), EXIT_S) == 0
    assert "open calls have up to 0s to finish" in served.log.read_text()
