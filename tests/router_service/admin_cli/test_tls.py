"""`switchboard admin` to a router that serves mutual TLS, with a CA made for the test: the
`--tls-*` options, or a config file's `edge.router_tls` (read as the edge reads it)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.admin_cli.shell import OPS, Ran, key_file, ops_config, run_admin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def address(fake: FakeUpstream, start_router: StartRouter, pki: dict[str, Any]) -> str:
    tls = {
        "cert_file": str(pki["server"].cert),
        "key_file": str(pki["server"].key),
        "client_ca_file": str(pki["ca"].issued.cert),
        "require_client_cert": True,
    }
    router = await start_router(ops_config(fake, server={"port": 0, "tls": tls}))
    return router.server.address


async def admin(address: str, tmp_path: Path, *args: str) -> Ran:
    keyed = ["--router", address, "--key-file", str(key_file(tmp_path))]
    return await run_admin([*keyed, *args], time.time)  # the certificate's real expiry


def client_tls(pki: dict[str, Any]) -> list[str]:
    return [
        *("--tls-ca-file", str(pki["ca"].issued.cert)),
        *("--tls-cert-file", str(pki["client"].cert)),
        *("--tls-key-file", str(pki["client"].key)),
    ]


async def test_mutual_tls_with_the_options(
    address: str, pki: dict[str, Any], tmp_path: Path
) -> None:
    shown = await admin(address, tmp_path, *client_tls(pki), "info")
    assert shown.code == 0, shown.err
    assert re.fullmatch(r"expires in 2[0-3]h( \d+m)?", shown.row("certificate")[1])  # a day
    # The name its certificate must carry: one it does not is refused in the handshake.
    named = await admin(
        address, tmp_path, *client_tls(pki), "--tls-server-name", "localhost", "info"
    )
    assert named.code == 0
    wrong = await admin(
        address, tmp_path, *client_tls(pki), "--tls-server-name", "other.test", "info"
    )
    assert wrong.code == 1
    assert wrong.err.startswith(f"switchboard admin: cannot reach the router at {address}: ")


async def test_without_a_client_certificate_the_router_is_not_reached(
    address: str, pki: dict[str, Any], tmp_path: Path
) -> None:
    refused = await admin(address, tmp_path, "--tls-ca-file", str(pki["ca"].issued.cert), "info")
    assert refused.code == 1
    assert refused.err.startswith(f"switchboard admin: cannot reach the router at {address}")
    plaintext = await admin(address, tmp_path, "info")
    assert plaintext.code == 1


async def test_the_edge_section_of_a_config_file_gives_address_tls_and_key(
    address: str, pki: dict[str, Any], tmp_path: Path
) -> None:
    edge = {
        "router_target": address,
        "router_tls": {
            "ca_file": str(pki["ca"].issued.cert),
            "cert_file": str(pki["client"].cert),
            "key_file": str(pki["client"].key),
        },
        "admin_router_key": OPS,
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"edge": edge}))
    path.chmod(0o600)  # it holds a secret

    shown = await run_admin(["--config", str(path), "keys"], time.time)

    assert shown.code == 0, shown.err
    assert shown.lines()[0][:2] == ["PROVIDER", "FINGERPRINT"]


async def test_tls_files_that_do_not_do_are_usage_errors(
    address: str, pki: dict[str, Any], tmp_path: Path
) -> None:
    half = await admin(address, tmp_path, "--tls-cert-file", str(pki["client"].cert), "info")
    assert (half.code, half.err) == (
        2,
        "switchboard admin: --tls-cert-file and --tls-key-file go together (mutual TLS)\n",
    )
    absent = tmp_path / "absent-ca.pem"
    missing = await admin(address, tmp_path, "--tls-ca-file", str(absent), "info")
    assert (missing.code, missing.err) == (
        2,
        f"switchboard admin: tls.ca_file: cannot read {absent}: No such file or directory\n",
    )
