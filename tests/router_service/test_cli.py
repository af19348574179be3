"""The `switchboard` command line (router_service/cli.py): what its serving commands load."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from router_service.fake_upstream import FakeUpstream
from tests.conftest import base_config
from tests.helpers import eventually, free_port
from tests.router_service.server.processes import EXIT_S, STARTUP_S, router_process, serving

pytestmark = pytest.mark.timeout(60)

_PROBE = """
import sys
from router_service.cli import without_httpx_cli
if sys.argv[1] == "guarded":
    without_httpx_cli()
import httpx
with httpx.Client() as client:  # httpx itself is whole
    assert client.timeout.read == 5.0
loaded = [name for name, module in sys.modules.items() if module is not None]
print(sorted(m for m in loaded if m == "click" or m.startswith("httpx._main")))
"""


def _modules_after_import_httpx(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_server_process_imports_httpx_without_its_command_line_client() -> None:
    pytest.importorskip("click")  # without click, httpx never loads its CLI: nothing to keep out
    # Unguarded, `import httpx` loads click (and, here, the whole CLI): what the guard is for.
    assert "'click'" in _modules_after_import_httpx("plain")
    assert _modules_after_import_httpx("guarded") == "[]"


# A router process held where its start imports the config models (pydantic: the bulk of the
# ~0.35 s before it serves), until the test writes a line to its stdin.
_HELD_AT_CONFIG_IMPORT = """
import sys

class Hold:
    def find_spec(self, name, path=None, target=None):
        if name == "router_service.config":
            sys.meta_path.remove(self)
            print("importing router_service.config", flush=True)
            sys.stdin.readline()
        return None

sys.meta_path.insert(0, Hold())
from router_service.cli import main
raise SystemExit(main())
"""


def _config_file(tmp_path: Path, config: dict[str, Any], name: str = "router.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


async def test_a_sighup_while_the_router_imports_is_a_reload_not_its_end(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """`systemctl reload` right after a start: the default action of SIGHUP would kill it."""
    port = free_port()
    config = base_config(fake.base_url, server={"host": "127.0.0.1", "port": port})
    path = _config_file(tmp_path, config)
    log = tmp_path / "router.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _HELD_AT_CONFIG_IMPORT, "router", "-c", str(path),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=out,
        )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP_S)
        assert line == b"importing router_service.config\n"
        process.send_signal(signal.SIGHUP)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # killed by it: below
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await serving(process, channel, log)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), EXIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "SIGHUP arrived while the router started" in log.read_text()


def _run_to_exit(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router_service", "router", "-c", str(path), *args],
        capture_output=True,
        text=True,
        timeout=50,
    )


@pytest.mark.parametrize(
    "taken", ["server.port", "telemetry.prometheus_port", "--port", "--metrics-port"]
)
def test_a_port_taken_is_one_line_and_exit_status_2(taken: str, tmp_path: Path) -> None:
    """Both ports are checked before anything starts (the metrics listener, the state store),
    as `serve` checks its own: a taken one is one line naming the address and what set it, not
    grpc's own log of a failed bind beside a guess at why."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        keys = ("server.port", "telemetry.prometheus_port", "--port", "--metrics-port")
        ports = {key: free_port() for key in keys} | {taken: port}
        config = base_config(
            "http://127.0.0.1:9/v1",  # never called: the router does not start
            server={"host": "127.0.0.1", "port": ports["server.port"]},
            telemetry={"prometheus_port": ports["telemetry.prometheus_port"]},
        )
        flags = [f for f in ("--port", "--metrics-port") if f == taken]
        done = _run_to_exit(
            _config_file(tmp_path, config), *flags, *map(str, map(ports.get, flags))
        )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"switchboard: cannot listen on 127.0.0.1:{port} ({taken}): Address already in use"
    )
    assert "Failed to add port" not in done.stderr  # grpc's log of its bind: none was tried
    assert "Prometheus metrics on" not in done.stderr  # nothing listened


def test_one_port_for_the_router_and_its_metrics_is_refused_by_name(tmp_path: Path) -> None:
    port = free_port()
    config = base_config(
        "http://127.0.0.1:9/v1", server={"host": "127.0.0.1"}, telemetry={"prometheus_port": port}
    )
    done = _run_to_exit(_config_file(tmp_path, config), "--port", str(port))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"switchboard: telemetry.prometheus_port and --port are both 127.0.0.1:{port}: "
        "give each its own port"
    )


def test_a_message_bound_past_what_grpc_holds_is_refused_by_its_key(tmp_path: Path) -> None:
    """grpc's channel arguments are C ints: 2**31 bytes or more failed the server's own
    construction with an OverflowError traceback, after the store and the metrics had started."""
    config = base_config(
        "http://127.0.0.1:9/v1", server={"host": "127.0.0.1", "max_message_bytes": 2**31}
    )
    done = _run_to_exit(_config_file(tmp_path, config), "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "OverflowError" not in done.stderr
    assert "server.max_message_bytes" in done.stderr
    assert "2147483647" in done.stderr


@pytest.mark.parametrize("key", ["max_body_bytes", "max_upload_bytes"])
def test_an_edge_body_bound_past_what_grpc_holds_is_refused_by_its_key(
    tmp_path: Path, key: str
) -> None:
    """The edge's router client takes the largest body it accepts plus 1 MiB of framing, and
    grpc's bound is a C int: a bound within 1 MiB of 2**31 or past it failed the edge's
    startup with the client's ValueError traceback (exit 3), naming no key of the file."""
    config = {"edge": {"router_target": "127.0.0.1:9", key: 2**31 - 1}}
    path = _config_file(tmp_path, config, name="edge.yaml")
    port = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "router_service", "edge", "-c", str(path), "--port", port],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"edge.{key}" in done.stderr
    assert str(2**31 - 1 - 1024 * 1024) in done.stderr


async def test_replicas_share_one_config_file_and_show_one_digest(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """The README's two replicas on one host: the second with --port and --metrics-port."""
    ports, metrics = (free_port(), free_port()), (free_port(), free_port())
    config = base_config(
        fake.base_url,
        server={"host": "127.0.0.1", "port": ports[0]},
        telemetry={"prometheus_port": metrics[0]},
    )
    path = _config_file(tmp_path, config)
    second = ["--port", str(ports[1]), "--metrics-port", str(metrics[1])]
    overrides: tuple[list[str], ...] = ([], second)
    digests: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        for index, args in enumerate(overrides):
            log = tmp_path / f"router{index}.log"
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "router_service", "router", "-c", str(path), *args,
                    stdout=out, stderr=out,
                )  # fmt: skip
            stack.push_async_callback(_stop, process)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports[index]}")
            stack.push_async_callback(channel.close)
            await serving(process, channel, log)
        async with httpx.AsyncClient() as http:
            for port in metrics:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                families = text_string_to_metric_families(text)
                (info,) = (s for f in families for s in f.samples if s.name.endswith("config_info"))
                digests.append(info.labels["switchboard_config_digest"])
    assert digests == [hashlib.sha256(path.read_bytes()).hexdigest()[:12]] * 2


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), EXIT_S)


async def test_with_the_sdk_disabled_the_router_serves_without_a_metrics_port(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    metrics = free_port()
    config = base_config(fake.base_url, telemetry={"prometheus_port": metrics})
    disabled = {"OTEL_SDK_DISABLED": "true"}
    async with router_process(config, tmp_path, env=disabled) as router:
        assert "chain" in await router.models()
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as http:
                await http.get(f"http://127.0.0.1:{metrics}/metrics")
        router.process.send_signal(signal.SIGTERM)
        assert await router.exit_code() == 0
    said = f"metrics are off (OTEL_SDK_DISABLED=true): no Prometheus listener on {metrics}"
    assert said in router.log.read_text()


@pytest.mark.parametrize("router", ["127.0.0.1:70000", ""])
def test_an_edge_given_a_router_it_cannot_call_says_so_in_one_line(router: str) -> None:
    argv = ["edge", "--router", router, "--port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "router_service.cli", *argv],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 2, done.stderr
    assert "--router" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("flag", [True, False], ids=["--port", "edge.port"])
def test_an_edge_whose_port_is_taken_says_so_in_one_line_with_exit_status_2(
    flag: bool, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        edge = {"host": "127.0.0.1", "router_target": "127.0.0.1:9"}  # never called
        argv = ["edge", "--port", str(port)] if flag else ["edge"]
        if not flag:
            edge["port"] = port
        path = _config_file(tmp_path, {"edge": edge})
        done = subprocess.run(
            [sys.executable, "-m", "router_service.cli", *argv, "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=50,
        )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    key = "--port" if flag else "edge.port"
    assert last.startswith("switchboard: cannot listen on ") and f"127.0.0.1:{port} ({key})" in last


# A `switchboard` command as the CLI runs it (`edge`, `router`), which prints the modules it holds
# as it exits (after SIGTERM's drain); argv[1:]: its command line.
CLI_THAT_LISTS_ITS_MODULES = """
import atexit, sys
atexit.register(lambda: print(*sorted(sys.modules), flush=True))
from router_service.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


async def _modules_of_a_serving_edge(*config: str) -> set[str]:
    """The modules a `switchboard edge` process holds once it serves; `config`: its `-c`."""
    port = free_port()
    argv = ["edge", *config, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--router", f"127.0.0.1:{free_port()}"]  # never called: no request comes
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI_THAT_LISTS_ITS_MODULES, *argv,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        async def live() -> bool:
            with contextlib.suppress(httpx.TransportError):
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            return False

        await eventually(live, within=STARTUP_S, what="the edge serves")
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), EXIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    return set(stdout.decode().split())


@pytest.fixture(scope="module")
def edge_modules() -> set[str]:
    """The modules of one `switchboard edge` process started without a config file: read by
    the tests below, none of which changes it (one process, not one each: ~1.5 CPU-s a start)."""
    return asyncio.run(_modules_of_a_serving_edge())


async def test_a_two_process_edge_loads_neither_a_yaml_parser_without_a_file_nor_the_local_channel(
    edge_modules: set[str], tmp_path: Path
) -> None:
    # PyYAML is ~0.7 MiB of an idle edge's memory, needed only to read a file; the in-process
    # channel (clients/_local*.py, ~0.13 MiB) only by `switchboard serve` (benchmarks/README.md,
    # "Where idle RSS goes", 2026-12-06).
    loaded = edge_modules
    assert "clients._client" in loaded  # it has opened its client to the router
    unwanted = [name for name in loaded if name.split(".")[0] == "yaml"]
    unwanted += [name for name in loaded if name.startswith(("clients._local", "clients._mailbox"))]
    assert unwanted == []
    config = tmp_path / "edge.yaml"
    config.write_text("edge: {cors_origins: []}\n")
    assert "yaml" in await _modules_of_a_serving_edge("-c", str(config))


def test_a_serving_edge_calls_the_router_without_the_generated_grpc_modules(
    edge_modules: set[str],
) -> None:
    # Its stubs are built from the services' descriptors (clients/_stubs.py): the generated
    # modules' servicers and experimental API are ~0.15 MiB of an idle edge's heap.
    loaded = edge_modules
    generated = {f"clients.switchboard.v1.{s}_service_pb2_grpc" for s in ("router", "admin")}
    assert loaded & generated == set()
    assert "clients._stubs" in loaded  # it has built its stubs
