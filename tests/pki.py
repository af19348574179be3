"""A certificate authority made for a test, and what it issues: TLS and mutual TLS tests of the
router's port, the edge's channel and certificate rotation."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families

from router_service.telemetry.testing import TelemetryCapture

__all__ = ["CA", "Issued", "expires", "expiry_gauges", "issue_pki", "swap_in", "trusting"]

_NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Issued:
    cert: Path
    key: Path

    def pair(self) -> tuple[bytes, bytes]:
        return self.key.read_bytes(), self.cert.read_bytes()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, cert: x509.Certificate, key: Any) -> Issued:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert_path, key_path)


class CA:
    def __init__(self, directory: Path, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            self._builder(self.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.directory = directory
        self.issued = _write(directory, name, self.cert, self.key)

    def _builder(
        self, subject: x509.Name, public_key: Any, days: float = 1
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(minutes=5))
            .not_valid_after(_NOW + datetime.timedelta(days=days))
        )

    def issue(self, stem: str, *, server: bool, days: float = 1) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = self._builder(_name(stem), key.public_key(), days)
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            usage = ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return _write(self.directory, stem, builder.sign(self.key, hashes.SHA256()), key)


def issue_pki(directory: Path) -> dict[str, Any]:
    """A CA with a server certificate (router), a client certificate (edge), and a client
    certificate from another CA (rogue)."""
    ca = CA(directory, "switchboard-test-ca")
    rogue = CA(directory, "rogue-ca")
    return {
        "ca": ca,
        "server": ca.issue("router", server=True),
        "client": ca.issue("edge", server=False),
        "rogue": rogue.issue("intruder", server=False),
    }


def trusting(ca: CA, client: Issued | None = None) -> grpc.ChannelCredentials:
    """Channel credentials that verify the server against `ca`, presenting `client`."""
    key, cert = client.pair() if client is not None else (None, None)
    return grpc.ssl_channel_credentials(
        root_certificates=ca.issued.cert.read_bytes(), private_key=key, certificate_chain=cert
    )


def swap_in(source: Path, target: Path) -> None:
    """Replace `target` whole with `source`'s bytes, as a Kubernetes secret volume or `mv` does
    (a rotation as the processes see it)."""
    staged = target.with_name(target.name + ".new")
    staged.write_bytes(source.read_bytes())
    os.replace(staged, target)


def expires(issued: Issued) -> float:
    """The certificate's notAfter as a Unix time, as `cryptography` reads it."""
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    return cert.not_valid_after_utc.timestamp()


def expiry_gauges(capture: TelemetryCapture) -> dict[str, float]:
    """`switchboard.tls.certificate.expiry` by role, from the Prometheus text."""
    return {
        sample.labels["switchboard_tls_role"]: sample.value
        for family in text_string_to_metric_families(capture.prometheus_text())
        for sample in family.samples
        if sample.name == "switchboard_tls_certificate_expiry_seconds"
    }
