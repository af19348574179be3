"""`switchboard serve`: the router and the edge in one process, the edge calling the router
in-process, the router's port still open to other callers; SIGTERM stops both, edge first."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import grpc
import httpx
import openai
import yaml

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc
from router_service.fake_upstream import FakeUpstream
from tests.conftest import base_config
from tests.helpers import eventually, free_port
from tests.router_service.server.processes import EXIT_S, STARTUP_S


async def test_serve_answers_on_both_ports_and_stops_on_sigterm(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    router_port, edge_port = free_port(), free_port()
    config = base_config(
        fake.base_url,
        server={"host": "127.0.0.1", "port": router_port},
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
        async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-x", max_retries=0) as sdk:
            answer = await sdk.chat.completions.create(
                model="chain", messages=[{"role": "user", "content": "hi"}]
            )
        assert answer.choices[0].message.content == "Echo: hi"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{router_port}") as channel:
            stub = router_service_pb2_grpc.RouterServiceStub(channel)
            listed = await stub.ListModels(pb.ListModelsRequest(), timeout=5)
        assert "chain" in {model.id for model in listed.models}
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), EXIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = log.read_text()
    assert "calls the router in-process" in text
    # The edge drained first, then the router.
    assert text.index("Application shutdown complete") < text.index("router stopped")
