"""`switchboard router`'s metrics as the CLI runs it: read by a Prometheus scrape or an OTLP
exporter, or not recorded at all (nothing could read them)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from tests.conftest import base_config
from tests.helpers import free_port
from tests.router_service.server.processes import EXIT_S, serving
from tests.router_service.test_cli import CLI_THAT_LISTS_ITS_MODULES, _config_file

pytestmark = pytest.mark.timeout(60)


async def _router_modules(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    """The modules a `switchboard router` holds once it serves (`args`: more of its command
    line), and the text of its `--metrics-port`'s `/metrics` when it has one."""
    port = free_port()
    config = base_config("http://127.0.0.1:9/v1", server={"host": "127.0.0.1", "port": port})
    path = _config_file(tmp_path, config)
    log = tmp_path / "router.log"
    # Telemetry as by default: no OTEL_* variable asks for traces or OTLP metrics.
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLI_THAT_LISTS_ITS_MODULES, "router", "-c", str(path), *args,
            stdout=asyncio.subprocess.PIPE, stderr=out, env=env,
        )  # fmt: skip
    scraped = ""
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await serving(process, channel, log)
        if "--metrics-port" in args:
            metrics_port = args[args.index("--metrics-port") + 1]
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert answer.status_code == 200
            scraped = answer.text
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), EXIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, log.read_text()
    return set(stdout.decode().split()), scraped


@dataclass(frozen=True)
class _Routers:
    """What two `switchboard router` processes held once they served: one nothing could
    scrape (`idle`) and one with a `--metrics-port` (`scraped_modules`, its `/metrics` text)."""

    idle: set[str]
    scraped_modules: set[str]
    scraped: str


@pytest.fixture(scope="module")
def routers(tmp_path_factory: pytest.TempPathFactory) -> _Routers:
    """The two routers of the tests below, started once: each test reads them and none changes
    them (two processes, not four: ~1.5 CPU-s a start)."""

    async def both() -> _Routers:
        idle, _ = await _router_modules(tmp_path_factory.mktemp("idle"))
        args = ("--metrics-port", str(free_port()))
        scraped_modules, scraped = await _router_modules(tmp_path_factory.mktemp("scraped"), *args)
        return _Routers(idle, scraped_modules, scraped)

    return asyncio.run(both())


def test_a_router_nothing_scrapes_loads_no_prometheus_exposition(routers: _Routers) -> None:
    # prometheus_client and OpenTelemetry's Prometheus exporter (with http.server, wsgiref and
    # html's entity table) are ~1.4 MiB of an idle router's memory, needed only to be scraped
    # (benchmarks/README.md, "Where idle RSS goes", 2026-12-07).
    loaded = routers.idle
    unwanted = {"prometheus_client", "opentelemetry.exporter.prometheus", "http.server"}
    assert "router_service.server" in loaded  # it served
    assert loaded & unwanted == set()
    loaded, scraped = routers.scraped_modules, routers.scraped
    assert {"prometheus_client", "opentelemetry.exporter.prometheus"} <= loaded
    assert "# TYPE switchboard_" in scraped  # its metrics, as before


def test_a_router_with_metrics_and_traces_off_loads_no_opentelemetry_sdk(
    routers: _Routers,
) -> None:
    # With nothing to record nor export, the SDK's metrics, resources and semantic conventions
    # (~1.5 MiB of an idle router) stay unloaded: instruments are the API's no-ops
    # (benchmarks/README.md, "Where idle RSS goes", 2026-12-07, second pass).
    loaded = routers.idle
    assert "router_service.server" in loaded  # it served
    sdk = {"opentelemetry.sdk", "opentelemetry.sdk.metrics", "opentelemetry.sdk.resources"}
    assert {
        name for name in loaded if name.startswith(("opentelemetry.sdk", "opentelemetry.semconv"))
    } == set()
    loaded = routers.scraped_modules
    assert sdk <= loaded  # scraped: the SDK's meter provider records, as before
