"""A `switchboard` start refused by a cheap check (a port taken) loads nothing of the servers
first: the check runs before the router's engine, its gRPC server and the edge's app are
imported, so a refusal costs about as much as `check-config` (~0.3 s of CPU, not ~0.7)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import base_config
from tests.helpers import free_port

pytestmark = pytest.mark.timeout(60)

# `switchboard` (its `main`) in a fresh interpreter, then which of the heavy modules it loaded;
# argv[1:]: the command line.
_REFUSED = """
import sys
from router_service.cli import main
code = main(sys.argv[1:])
heavy = ("router_service.runtime", "router_service.server._server", "http_edge._app")
print(*[name for name in heavy if name in sys.modules])
raise SystemExit(code)
"""


@pytest.mark.parametrize("command", ["router", "serve", "dev", "edge"])
def test_a_start_refused_for_a_port_taken_loads_no_server(command: str, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        listen = {"host": "127.0.0.1", "port": port}
        if command == "edge":
            config = {"edge": {**listen, "router_target": "127.0.0.1:9"}}  # never called
        else:  # the other ports free (not the defaults, which another process may hold)
            edge = {"host": "127.0.0.1", "port": free_port()}
            config = base_config("http://127.0.0.1:9/v1", server=listen, edge=edge)
        path = tmp_path / "switchboard.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        fake = ["--fake-port", str(free_port())] if command == "dev" else []
        done = subprocess.run(
            [sys.executable, "-c", _REFUSED, command, "-c", str(path), *fake],
            capture_output=True,
            text=True,
            timeout=50,
        )
    assert done.returncode == 2, done.stderr
    key = "edge.port" if command == "edge" else "server.port"
    assert f"127.0.0.1:{port} ({key}): Address already in use" in done.stderr
    assert done.stdout.split() == []
