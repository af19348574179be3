"""`switchboard serve`: the router and the edge in one process, the edge calling the router
in-process, the router's port still open to other callers; SIGTERM stops both, edge first."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
import yaml

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import base_config
from tests.e2e.stream_harness import (
    QUIET,
    STEPPED,
    STEPPED_ARRIVALS,
    chat_params,
    stepped_chunks,
    stepped_sse,
)
from tests.helpers import eventually, free_port
from tests.router_service.server.processes import EXIT_S, STARTUP_S


@dataclass
class Served:
    process: asyncio.subprocess.Process
    log: Path
    edge: str  # the edge's base URL
    router: str  # the router port's address


@contextlib.asynccontextmanager
async def serve_process(
    fake: FakeUpstream,
    tmp_path: Path,
    *,
    dev: bool = False,
    telemetry: dict[str, Any] | None = None,
    streams: dict[str, Any] | None = None,
    **server: Any,
) -> AsyncIterator[Served]:
    """`switchboard serve` on free loopback ports (`server`: more of that section; `streams`,
    `telemetry`: those sections, when given), ready; killed at the end if it is still running.
    `dev`: `switchboard dev` instead, its own fake upstream on `fake`'s port (`fake` stopped
    first: the tests drive it over HTTP)."""
    router_port, edge_port = free_port(), free_port()
    config = base_config(
        fake.base_url,
        server={"host": "127.0.0.1", "port": router_port, **server},
        edge={"host": "127.0.0.1", "port": edge_port},
    )
    if telemetry is not None:
        config["telemetry"] = telemetry
    if streams is not None:
        config["streams"] = streams
    argv = ["serve"]
    if dev:
        await fake.aclose()
        (tmp_path / "none.yaml").write_text("[]\n")  # no rules
        argv = ["dev", "--fake-port", str(fake.port), "--scenarios", str(tmp_path / "none.yaml")]
    process, log = await _started(tmp_path, config, *argv)
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


async def _started(
    tmp_path: Path, config: dict[str, Any], *argv: str
) -> tuple[asyncio.subprocess.Process, Path]:
    """`python -m router_service ARGV -c FILE` with `config` in FILE; its log (stdout and
    stderr) in a file."""
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router_service", *argv, "-c", str(path),
            stdout=out, stderr=out,
        )  # fmt: skip
    return process, log


async def test_serve_answers_on_both_ports_and_stops_on_sigterm(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """Also: its two metrics endpoints are one scrape. The edge's `/metrics` and the metrics
    port read the one process's numbers: scraping both counts every request twice, which its
    startup log says (and README, One process). One process for both (a start is ~2 CPU-s)."""
    port = free_port()
    async with serve_process(fake, tmp_path, telemetry={"prometheus_port": port}) as served:
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
        async with httpx.AsyncClient() as http:
            edge = (await http.get(f"{served.edge}/metrics")).text
            router = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), EXIT_S) == 0
    counted = [line for line in edge.splitlines() if line.startswith("switchboard_requests_total")]
    assert counted and all(line in router.splitlines() for line in counted)  # the same series
    text = served.log.read_text()
    assert "calls the router in-process" in text
    assert f"127.0.0.1:{port}) serve the same numbers: scrape one of them" in text
    # The edge drained first, then the router.
    assert text.index("Application shutdown complete") < text.index("router stopped")


async def test_each_chunk_reaches_the_caller_before_the_next_is_sent(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """As tests/e2e/test_stream_pacing.py, through the process `switchboard serve` is (its
    loop, its edge's protocol): over HTTP (its edge calling its router in-process), and over
    the router's port as the edge asks (`batch_chunks`, the route on the first chunks)."""
    fake.state.set_scenario(STEPPED)
    async with serve_process(
        fake, tmp_path, streams={"heartbeat_s": QUIET["heartbeat_s"]}
    ) as served:
        async with httpx.AsyncClient(base_url=served.edge, timeout=EXIT_S * 4) as http:
            assert (await stepped_sse(fake, http)).endswith(b"data: [DONE]\n\n")
        request = pb.ChatStreamRequest(
            params=chat_params(), batch_chunks=True, route_on_first_message=True
        )
        async with RouterClient(served.router) as client:
            assert await stepped_chunks(fake, client, request) == STEPPED_ARRIVALS[-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_second_sigterm_stops_both_now_without_a_traceback(
    fake: FakeUpstream, tmp_path: Path, signum: signal.Signals
) -> None:
    """As `router`'s: a second SIGTERM (or Ctrl-C) during the edge's drain cuts it, and the
    router's too (the open stream would otherwise hold the process for the router's whole
    grace); the stream ends with an error event, the edge's app shuts down as on a first
    stop, and the log says so in one line, without a traceback. Nor does the router's drain
    delay hold it (new calls taken only to be cut)."""
    fake.state.set_scenario(Scenario(held_after_chunks=2))  # only a release or a stop ends it
    stop: dict[str, Any] = {"shutdown_grace_s": 60, "drain_delay_s": 600}
    async with serve_process(fake, tmp_path, **stop) as served:
        async with _draining(served, signum) as (_, lines):
            served.process.send_signal(signum)  # an operator who will not wait
            rest = [line async for line in lines if line]
            assert await asyncio.wait_for(served.process.wait(), EXIT_S) == 0
    assert any('"error"' in line for line in rest), rest
    text = served.log.read_text()
    assert "open calls have up to 0s to finish" in text
    assert f"{signum.name} again: stopping now" in text
    assert "Application shutdown complete" in text
    assert "Traceback" not in text, text


@contextlib.asynccontextmanager
async def _draining(
    served: Served, signum: signal.Signals = signal.SIGTERM
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncIterator[str]]]:
    """A stream under way on the edge (its upstream holds it), then `signum`: inside, the edge
    drains; the client the stream is on, and its lines still to read."""
    body = {"model": "chain", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        httpx.AsyncClient(base_url=served.edge, timeout=EXIT_S * 4) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: ")  # the stream is under way
        served.process.send_signal(signum)
        await _logged(served, "Shutting down")  # the edge's drain begun
        yield http, lines


async def _logged(served: Served, text: str) -> None:
    async def said() -> bool:
        assert served.process.returncode is None, served.log.read_text()
        return text in served.log.read_text()

    await eventually(said, within=10, what=repr(text))


async def test_dev_stops_the_edge_then_the_router_then_the_fake_upstream(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """`switchboard dev` (`make run`) stops as `serve` does: the edge takes no new requests and
    lets its open stream finish (on the router, which still serves it), then the router stops,
    then the fake upstream; exit status 0."""
    async with serve_process(fake, tmp_path, dev=True) as served:
        rule = {"scenario": {"held_after_chunks": 2}}
        async with httpx.AsyncClient(base_url=fake.url) as control:
            assert (await control.put("/_fake/scenarios", json=rule)).status_code == 200
        async with (
            httpx.AsyncClient(base_url=fake.url) as control,
            _draining(served) as (http, lines),
        ):
            with pytest.raises(httpx.TransportError):  # it takes no new connection
                await http.get("/readyz")
            assert "router stopping" not in served.log.read_text()
            assert (await control.post("/_fake/release")).json() == {"released": 1}
            rest = [line async for line in lines if line]
        assert rest[-1] == "data: [DONE]", rest
        assert not any('"error"' in line for line in rest), rest
        assert await asyncio.wait_for(served.process.wait(), EXIT_S) == 0
    text = served.log.read_text()
    edge_done = text.index("Application shutdown complete")
    assert edge_done < text.index("router stopping") < text.index("router stopped")
    assert "Traceback" not in text, text


@pytest.mark.parametrize(
    ("command", "taken"),
    [
        ("serve", "edge.port"),
        ("serve", "server.port"),
        ("serve", "telemetry.prometheus_port"),
        ("dev", "edge.port"),
        ("dev", "--fake-port"),
    ],
)
async def test_a_port_taken_stops_it_before_anything_starts(
    command: str, taken: str, tmp_path: Path
) -> None:
    """Every port `serve` (and `dev`) listens on is checked before any starts: a taken one is
    one line naming the address and its key, exit status 2, and nothing ever listened."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        keys = ("server.port", "edge.port", "telemetry.prometheus_port", "--fake-port")
        ports = {key: free_port() for key in keys} | {taken: port}
        config = base_config(
            "http://127.0.0.1:9/v1",  # never called: nothing starts
            server={"host": "127.0.0.1", "port": ports["server.port"]},
            edge={"host": "127.0.0.1", "port": ports["edge.port"]},
            telemetry={"prometheus_port": ports["telemetry.prometheus_port"]},
        )
        argv = (
            [command] if command == "serve" else [command, "--fake-port", str(ports["--fake-port"])]
        )
        process, log = await _started(tmp_path, config, *argv)
        assert await asyncio.wait_for(process.wait(), STARTUP_S) == 2
    text = log.read_text()
    assert "Traceback" not in text, text
    assert text.strip().splitlines()[-1] == (
        f"switchboard: cannot listen on 127.0.0.1:{port} ({taken}): Address already in use"
    )
    assert "listening" not in text, text  # neither the router, nor the fake upstream


@pytest.mark.parametrize("variable", [None, ""], ids=["unset", "empty"])
async def test_dev_on_another_fake_port_calls_the_fake_upstream_it_started(
    variable: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run`'s config names its upstream `${FAKE_UPSTREAM_URL:-http://127.0.0.1:9100/v1}`:
    `switchboard dev --fake-port N` points that at the fake upstream it starts on N, so a demo
    moved off a taken port answers as on 9100 (not a 503 for every call). An empty variable is
    one unset, as `:-` reads it."""
    if variable is None:
        monkeypatch.delenv("FAKE_UPSTREAM_URL", raising=False)
    else:
        monkeypatch.setenv("FAKE_UPSTREAM_URL", variable)
    examples = Path(__file__).parents[2] / "examples"
    config = yaml.safe_load((examples / "dev.yaml").read_text())
    edge_port, fake_port = free_port(), free_port()
    config["server"]["port"], config["edge"]["port"] = free_port(), edge_port
    config["telemetry"]["prometheus_port"] = free_port()
    scenarios = str(examples / "fake-scenarios.yaml")
    argv = ("dev", "--fake-port", str(fake_port), "--scenarios", scenarios)
    process, log = await _started(tmp_path, config, *argv)
    body = {"model": "demo-chat", "messages": [{"role": "user", "content": "hello"}]}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge_port}") as http:

            async def ready() -> bool:
                assert process.returncode is None, log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            await eventually(ready, within=STARTUP_S, what="the edge ready")
            answer = await http.post("/v1/chat/completions", json=body)
            # Answered by the fake upstream on N, not by one that happens to be on 9100.
            counted = await http.get(f"http://127.0.0.1:{fake_port}/_fake/counters")
        assert answer.status_code == 200, answer.text
        assert counted.json()["total"] == 2, counted.text
        assert answer.headers["x-switchboard-deployment"] == "beta/small-fast"
        assert answer.headers["x-switchboard-attempts"] == "2"  # past flaky-large's 503 rule
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), EXIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
