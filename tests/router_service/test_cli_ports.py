"""The ports a `switchboard` command listens on: 0 is any free port, for every command, and the
port chosen is reported; the listeners one config describes never share a port."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from router_service.cli import main
from router_service.fake_upstream import FakeUpstream
from tests.conftest import base_config
from tests.router_service.server.processes import EXIT_S, STARTUP_S

pytestmark = pytest.mark.timeout(60)


async def _first_match(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    """The first line of `stream` that `pattern` matches (within the process's startup)."""

    async def read() -> re.Match[str]:
        while line := (await stream.readline()).decode():
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"the process ended without a line matching {pattern!r}")

    return await asyncio.wait_for(read(), STARTUP_S)


async def test_edge_port_0_is_any_free_port_reported_as_uvicorn_reports_it(
    tmp_path: Path,
) -> None:
    """`--port 0` as `switchboard router --port 0` reads it: any free port, not the config's
    (held here, so a fallback to it could not listen)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        configured = holder.getsockname()[1]
        edge = {"host": "127.0.0.1", "port": configured, "router_target": "127.0.0.1:9"}
        path = tmp_path / "edge.yaml"
        path.write_text(yaml.safe_dump({"edge": edge}))
        argv = ["edge", "-c", str(path), "--port", "0"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router_service", *argv, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        try:
            found = await _first_match(process.stderr, r"running on http://127\.0\.0\.1:(\d+)")
            port = int(found.group(1))
            assert port not in (0, configured)
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), EXIT_S) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.parametrize("command", ["serve", "dev"])
async def test_serve_and_dev_report_the_edge_port_0_chose(
    command: str, fake: FakeUpstream, tmp_path: Path
) -> None:
    """`edge.port: 0` under `serve` (its started line) and `dev` (its banner): the port the edge
    got, said once it listens, not 0."""
    config = base_config(
        fake.base_url,
        server={"host": "127.0.0.1", "port": 0},
        edge={"host": "127.0.0.1", "port": 0},
    )
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    argv = [command, "-c", str(path)]
    said = r"the edge on 127\.0\.0\.1:(\d+) calls the router in-process"
    if command == "dev":
        await fake.aclose()  # `dev` starts its own on that port
        (tmp_path / "none.yaml").write_text("[]\n")
        argv += ["--fake-port", str(fake.port), "--scenarios", str(tmp_path / "none.yaml")]
        said = r"Switchboard dev is up: edge http://127\.0\.0\.1:(\d+)/v1"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "router_service", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        port = int((await _first_match(process.stdout, said)).group(1))
        assert port != 0
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), EXIT_S)
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(("first", "second"), [("server.port", "telemetry.prometheus_port")])
def test_check_config_refuses_two_listeners_on_one_port_by_their_keys(
    first: str, second: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The router's own two listeners: caught when the file loads (`check-config`, and every
    command that reads it), not only when the router finds its second port taken at its start."""
    config = base_config(
        "http://127.0.0.1:9/v1",
        server={"host": "127.0.0.1", "port": 50051},
        edge={"host": "127.0.0.1", "port": 8080},
        telemetry={"prometheus_port": 9464},
    )
    section, key = second.split(".")
    config[section][key] = 50051 if first == "server.port" else 8080
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    assert main(["check-config", str(path)]) == 2
    said = capsys.readouterr().err
    assert f"{second}: " in said and f"is also {first} (127.0.0.1:" in said, said
    assert "Traceback" not in said


def test_one_port_on_two_hosts_or_port_0_twice_is_no_clash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = base_config(
        "http://127.0.0.1:9/v1",
        server={"host": "127.0.0.1", "port": 0},
        edge={"host": "127.0.0.2", "port": 0},
        telemetry={"prometheus_host": "127.0.0.2", "prometheus_port": 0},
    )
    config["server"]["port"] = config["edge"]["port"] = 8080
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err


def test_a_router_and_an_edge_run_apart_may_share_one_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file for a router and an edge each in its own container, both on 0.0.0.0:8080: the
    file is fine (each process listens alone); `serve` would refuse it at its start."""
    config = base_config(
        "http://127.0.0.1:9/v1",
        server={"host": "0.0.0.0", "port": 8080},
        edge={"host": "0.0.0.0", "port": 8080},
    )
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
