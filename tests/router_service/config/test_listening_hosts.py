"""Where a process listens is said, never left empty: an empty `host` (often an empty
`${VAR:-}`) made grpc, uvicorn and the metrics listener bind every interface (the router on
`*`, IPv4 and IPv6), though the file meant no such thing and the default is loopback. It is
refused at load, by its path, at `check-config` and at the start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from router_service.cli import main
from tests.conftest import base_config
from tests.helpers import free_port
from tests.router_service.server.processes import STARTUP_S

pytestmark = pytest.mark.timeout(60)

HOSTS: dict[str, dict[str, object]] = {
    "server.host": {"server": {"host": "${LISTEN_HOST:-}", "port": 0}},
    "edge.host": {"edge": {"host": "${LISTEN_HOST:-}"}},
    "telemetry.prometheus_host": {"telemetry": {"prometheus_host": " "}},
}


def _file(tmp_path: Path, sections: dict[str, object]) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(base_config("http://127.0.0.1:9/v1", **sections)))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("setting", HOSTS)
def test_check_config_refuses_an_empty_host_by_its_path(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(_file(tmp_path, HOSTS[setting]))]) == 2
    err = capsys.readouterr().err
    assert f"{setting}: Value error, is empty" in err, err
    assert "0.0.0.0" in err  # what to write to mean every interface


def test_a_router_whose_host_is_empty_does_not_start_on_every_interface(tmp_path: Path) -> None:
    port = free_port()
    path = _file(tmp_path, {"server": {"host": "${LISTEN_HOST:-}", "port": port}})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "router_service", "router", "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=STARTUP_S,
            env={"PATH": "/usr/bin:/bin", "LISTEN_HOST": ""},
        )
    except subprocess.TimeoutExpired as exc:  # killed by run()
        pytest.fail(f"the router started (on every interface): {exc.stderr!r}")
    assert done.returncode == 2, done.stderr
    assert "server.host: Value error, is empty" in done.stderr
    assert "router listening" not in done.stderr
