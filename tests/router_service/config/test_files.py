"""Files a config names are found beside it, and `check-config` reads them as the processes do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from router_service.cli import main
from router_service.config import load_config, load_edge_config
from tests.pki import CA

TLS = """
providers:
  a: {base_url: "http://127.0.0.1:9/v1", keys: [sk-a]}
auth: {open: true}
server:
  tls: {cert_file: router.pem, key_file: router.key, client_ca_file: ca.pem,
        require_client_cert: true}
edge:
  tls: {cert_file: api.pem, key_file: api.key}
  router_tls: {ca_file: certs/ca.pem, cert_file: edge.pem, key_file: edge.key}
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """A config directory with every file TLS names, the CA bundle also under certs/."""
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    ca = CA(config_dir, "ca")
    ca.issue("router", server=True)
    ca.issue("api", server=True)
    ca.issue("edge", server=False)
    (config_dir / "certs").mkdir()
    (config_dir / "certs" / "ca.pem").write_bytes(ca.issued.cert.read_bytes())
    config = config_dir / "switchboard.yaml"
    config.write_text(TLS)
    config.chmod(0o600)
    return config_dir


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory is not the config's (under systemd it is /)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_relative_paths_are_relative_to_the_config_file(directory: Path, elsewhere: Path) -> None:
    config = load_config(os.path.relpath(directory / "switchboard.yaml"), env={})
    assert config.server.tls is not None and config.edge.router_tls is not None
    assert config.server.tls.cert_file == str(directory / "router.pem")
    assert config.server.tls.client_ca_file == str(directory / "ca.pem")
    assert config.edge.router_tls.ca_file == str(directory / "certs" / "ca.pem")
    edge = load_edge_config(directory / "switchboard.yaml", env={}).edge
    assert edge.tls is not None and edge.tls.key_file == str(directory / "api.key")


def test_absolute_paths_stay(directory: Path) -> None:
    text = TLS.replace("cert_file: router.pem", f"cert_file: {directory}/router.pem")
    (directory / "switchboard.yaml").write_text(text)
    config = load_config(directory / "switchboard.yaml", env={})
    assert config.server.tls is not None
    assert config.server.tls.cert_file == f"{directory}/router.pem"


def test_check_config_reads_the_tls_files(
    directory: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(directory / "switchboard.yaml")
    assert main(["check-config", path]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("remove", "role", "expected"),
    [
        ("router.key", None, "server.tls.key_file: cannot read {d}/router.key"),
        ("router.key", "router", "server.tls.key_file: cannot read {d}/router.key"),
        ("ca.pem", None, "server.tls.client_ca_file: cannot read {d}/ca.pem"),
        ("api.pem", "edge", "edge.tls.cert_file: cannot read {d}/api.pem"),
        ("edge.key", None, "edge.router_tls.key_file: cannot read {d}/edge.key"),
        ("certs/ca.pem", "edge", "edge.router_tls.ca_file: cannot read {d}/certs/ca.pem"),
    ],
)
def test_check_config_refuses_missing_files(
    directory: Path,
    elsewhere: Path,
    capsys: pytest.CaptureFixture[str],
    remove: str,
    role: str | None,
    expected: str,
) -> None:
    (directory / remove).unlink()
    path = str(directory / "switchboard.yaml")
    assert main(["check-config", path, *(["--role", role] if role else [])]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected.format(d=directory)}: No such file or directory" in err


def test_check_config_checks_only_the_roles_files(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (directory / "router.key").unlink()  # the router's: the edge's host need not have it
    path = str(directory / "switchboard.yaml")
    assert main(["check-config", "--role", "edge", path]) == 0
    assert main(["check-config", "--role", "router", path]) == 2
    (directory / "api.pem").unlink()  # the edge's
    assert main(["check-config", path]) == 2
    err = capsys.readouterr().err
    assert "server.tls.key_file" in err and "edge.tls.cert_file" in err


def test_check_config_refuses_a_key_of_another_certificate(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (directory / "router.key").write_bytes((directory / "api.key").read_bytes())
    assert main(["check-config", str(directory / "switchboard.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"server.tls: {directory}/router.pem and {directory}/router.key are not a " in err
