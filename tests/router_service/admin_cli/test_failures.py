"""`switchboard admin` when it cannot do what was asked: a key the router refuses or none, a
router nothing answers for, a command line that does not hold. Each is one line on stderr and
an exit status of its own (2 usage, 3 refused, 4 not found, 1 the rest), never a traceback, and
never the key."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from router_service.admin_cli._connect import KEY_VARIABLE
from router_service.cli import main as switchboard
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.helpers import free_port
from tests.router_service.admin_cli.shell import ALICE, OPS, Shell, ops_shell, run_admin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ops(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Shell:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    return await ops_shell(fake, start_router, tmp_path)


async def test_a_key_the_router_does_not_know_is_exit_status_3(ops: Shell) -> None:
    refused = await ops("info", key=["--key", "sk-not-a-client-0123"])
    assert (refused.code, refused.out) == (3, "")
    assert refused.err.startswith(
        "switchboard admin: the router refused the admin key from --key: "
    )
    assert refused.err.count("\n") == 1 and "sk-not-a-client" not in refused.err


async def test_a_key_without_the_admin_scope_is_exit_status_3(ops: Shell) -> None:
    refused = await ops("clients", key=["--key", ALICE])
    assert refused.code == 3
    assert refused.err.startswith(
        "switchboard admin: the router does not let the key from --key do this (scope `admin`): "
    )


async def test_without_a_key_the_message_says_where_one_goes(
    ops: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = await ops("keys", key=[])
    assert missing.code == 3
    assert missing.err.startswith(
        "switchboard admin: the router wants an admin key (give one with --key-file, "
        "SWITCHBOARD_ADMIN_KEY or --key): "
    )
    monkeypatch.setenv(KEY_VARIABLE, OPS)  # the environment's key, when no option gives one
    assert (await ops("keys", key=[])).code == 0


async def test_a_key_file_that_does_not_read_is_a_usage_error(ops: Shell, tmp_path: Path) -> None:
    absent = tmp_path / "nowhere.key"
    unread = await ops("info", key=["--key-file", str(absent)])
    assert (unread.code, unread.err) == (
        2,
        f"switchboard admin: --key-file: cannot read {absent}: No such file or directory\n",
    )
    two_lines = tmp_path / "two.key"
    two_lines.write_text(f"{OPS}\nsecond line\n")
    garbled = await ops("info", key=["--key-file", str(two_lines)])
    assert garbled.code == 2
    assert "--key-file: the admin key is empty or not one line of printable ASCII" in garbled.err


async def test_switchboard_admin_is_a_subcommand_of_switchboard(ops: Shell) -> None:
    def run() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            argv = ["admin", "--router", ops.router.server.address, "--key-file"]
            code = switchboard([*argv, str(ops.key_file), "keys", "--json"])
        return code, out.getvalue()

    code, out = await asyncio.to_thread(run)
    assert code == 0 and '"fingerprint": "fp_' in out and "sk-alpha" not in out


def _switchboard(*args: str, key: str | None = OPS) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_VARIABLE}
    if key is not None:
        env[KEY_VARIABLE] = key
    command = [sys.executable, "-m", "router_service.cli", *args]
    # Well inside the --timeout the tests give: failing fast is the point.
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=25)


def test_a_router_nothing_answers_for_fails_at_once_naming_its_address() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = _switchboard("admin", "--router", address, "--timeout", "40", "info")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"switchboard admin: cannot reach the router at {address}: ")
    assert done.stderr.count("\n") == 1 and OPS not in done.stderr


def test_tls_to_a_plaintext_port_is_one_line_without_grpcs_own_log() -> None:
    """gRPC's C core logs a failed handshake on stderr itself (an `I…` line): a script reading
    the one line of `switchboard admin` got two."""
    with socket.create_server(("127.0.0.1", 0)) as plain:
        address = f"127.0.0.1:{plain.getsockname()[1]}"

        def answer() -> None:  # an HTTP/1.1 server, not TLS: every handshake fails
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = plain.accept()
                    with conn:
                        conn.recv(4096)
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        done = _switchboard("admin", "--tls", "--router", address, "info")
    assert done.returncode == 1
    assert done.stderr.startswith(f"switchboard admin: cannot reach the router at {address}: ")
    assert done.stderr.count("\n") == 1


def test_a_bare_purge_is_a_usage_error_that_reaches_no_router() -> None:
    address = f"127.0.0.1:{free_port()}"  # had it been tried, this would be exit status 1
    done = _switchboard("admin", "--router", address, "purge-cache")
    assert done.returncode == 2
    assert "one of the arguments MODEL --all is required" in done.stderr


def test_an_empty_model_to_purge_is_a_usage_error_not_every_models_answers() -> None:
    """`purge-cache "$MODEL"` with the variable unset: an empty model is the call's "all"."""
    address = f"127.0.0.1:{free_port()}"  # had it been tried, this would be exit status 1
    done = _switchboard("admin", "--router", address, "purge-cache", "")
    assert done.returncode == 2
    assert "a model name (--all for every model's answers)" in done.stderr


def test_a_server_start_never_loads_the_admin_command() -> None:
    probe = (
        "import sys; from router_service.cli import main; code = main(['router', '--config', "
        "'/nonexistent/router.yaml']); print(code, 'router_service.admin_cli' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=50)
    assert done.stdout.strip() == "2 False", done.stderr  # the config refused, admin_cli unloaded
    help_text = subprocess.run(
        [sys.executable, "-m", "router_service.cli", "-h"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert "admin" in help_text.stdout  # listed all the same


async def test_a_reader_that_leaves_early_is_no_error(ops: Shell) -> None:
    """`switchboard admin keys --json | head -1`: the pipe closes before the answer is written."""
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write fails with EPIPE, whatever the timing
    try:
        argv = ["admin", "--router", ops.router.server.address, "--key-file", str(ops.key_file)]
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "router_service.cli", *argv, "keys", "--json"),
            stdout=writer,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(writer)
    _, err = await asyncio.wait_for(process.communicate(), timeout=50)
    assert (process.returncode, err.decode()) == (0, "")


async def test_a_jobs_limit_past_the_calls_int32_is_a_usage_error() -> None:
    address = f"127.0.0.1:{free_port()}"  # had it been tried, this would be exit status 1
    argv = ["--router", address, "--key", OPS, "jobs", "--limit", "9" * 12]
    too_many = await run_admin(argv, time.time)  # was a ValueError's traceback
    assert too_many.code == 2 and "--limit" in too_many.err


@pytest.mark.parametrize("seconds", ["inf", "1e308", "1e9", "86401"])
async def test_a_timeout_no_deadline_can_hold_is_a_usage_error(ops: Shell, seconds: str) -> None:
    # grpc turns a deadline past its clock's range into one already gone: these were "no
    # answer from the router within infs" from a router that answers at once.
    refused = await ops("--timeout", seconds, "info")
    assert refused.code == 2 and "--timeout" in refused.err
    assert refused.out == ""


async def test_a_day_long_timeout_is_waited_for(ops: Shell) -> None:
    assert (await ops("--timeout", "86400", "info")).code == 0


async def test_a_port_past_65535_is_a_usage_error_not_another_port(ops: Shell) -> None:
    # grpc takes a port modulo 65536: this reached the router on its own port, as if typed right.
    port = int(ops.router.server.address.rpartition(":")[2])
    wrapped = await run_admin(["--router", f"127.0.0.1:{port + 65536}", "info"], time.time)
    assert wrapped.code == 2 and f"port {port + 65536} is past 65535" in wrapped.err


async def test_an_empty_router_address_is_a_usage_error_not_the_default() -> None:
    # `--router "$ROUTER"` with the variable unset went to 127.0.0.1:50051, whatever runs there.
    empty = await run_admin(["--router", "", "--key", OPS, "info"], time.time)
    assert empty.code == 2 and "--router" in empty.err
