"""`PemFiles`: certificate, key and CA files read again while a process runs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509

from router_service.config import PemFiles
from router_service.config._pem import not_after
from router_service.errors import ConfigError
from tests.pki import CA

log = logging.getLogger("test.pem")


def _files(directory: Path, ca_setting: str = "ca_file") -> PemFiles:
    return PemFiles(
        "edge.router_tls",
        cert_file=str(directory / "live.pem"),
        key_file=str(directory / "live.key"),
        ca_file=str(directory / "bundle.pem"),
        ca_setting=ca_setting,
        log=log,
    )


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    ca = CA(tmp_path, "ca")
    issued = ca.issue("edge", server=False)
    (tmp_path / "live.pem").write_bytes(issued.cert.read_bytes())
    (tmp_path / "live.key").write_bytes(issued.key.read_bytes())
    (tmp_path / "bundle.pem").write_bytes(ca.issued.cert.read_bytes())
    return tmp_path


def test_unchanged_files_are_no_news_and_a_renewal_is(directory: Path) -> None:
    files = _files(directory)
    first = files.current
    assert files.reread() is None
    renewed = CA(directory, "next-ca").issue("edge-2", server=False)
    (directory / "live.pem").write_bytes(renewed.cert.read_bytes())
    (directory / "live.key").write_bytes(renewed.key.read_bytes())
    found = files.reread()
    assert found is not None and found == files.current != first
    assert found.cert == renewed.cert.read_bytes()
    assert files.reread() is None


def test_a_bad_bundle_is_named_by_its_setting(directory: Path) -> None:
    (directory / "bundle.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"server\.tls\.client_ca_file: .* not a PEM CA bundle"):
        PemFiles(
            "server.tls",
            cert_file=str(directory / "live.pem"),
            key_file=str(directory / "live.key"),
            ca_file=str(directory / "bundle.pem"),
            ca_setting="client_ca_file",
            log=log,
        )


def test_refused_files_keep_the_current_set_and_warn_once(
    directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = _files(directory)
    kept = files.current
    (directory / "bundle.pem").write_text("cut short -----BEGIN CERTIFICATE-----\n")
    with caplog.at_level(logging.WARNING, logger="test.pem"):
        assert files.reread() is None
        assert files.reread() is None
    assert files.current == kept
    assert len(caplog.records) == 1
    assert "edge.router_tls: new files not taken" in caplog.records[0].getMessage()
    assert "ca_file" in caplog.records[0].getMessage()


@pytest.mark.parametrize("days", [1, 365 * 40])  # UTCTime until 2049, GeneralizedTime from 2050
def test_not_after_reads_the_certificates_expiry(tmp_path: Path, days: int) -> None:
    issued = CA(tmp_path, "ca").issue("router", server=True, days=days)
    pem = issued.cert.read_bytes()
    expected = x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    assert not_after(pem) == expected
    assert not_after(b"junk\n" + pem + pem) == expected  # the chain's first, after any preamble


def test_not_after_of_what_is_no_certificate_is_none() -> None:
    assert not_after(b"no certificate here") is None
    broken = b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"
    assert not_after(broken) is None
