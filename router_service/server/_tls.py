"""TLS and mutual TLS on the router's port (`server.tls`), with certificates rotated in place.

Certificates are short-lived where they are managed well (cert-manager renews at two thirds of
their life and rewrites the mounted secret; Vault agents and certbot rewrite files too). grpc
asks a certificate fetcher before every new connection's handshake; ours reads the files and,
when they changed, checks them and hands grpc the new pair and CA bundle. Connections already
open keep the certificate they shook hands with. A half-written rotation (a new certificate
beside the old key, a file cut short or missing for a moment) is refused by the check and the
port keeps serving what it had, with one warning; the next connection after the writer has
finished picks the new files up.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from router_service.config import ServerTLSConfig
from router_service.errors import ConfigError

__all__ = ["CertificateFiles"]

log = logging.getLogger("switchboard.router")


@dataclass(frozen=True)
class _Material:
    key: bytes
    cert: bytes
    client_ca: bytes | None

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.key, self.cert)], root_certificates=self.client_ca
        )


class CertificateFiles:
    """The router's certificate, key and client CA bundle as files that may be rewritten while
    it serves. Build it before the port opens (unreadable or inconsistent files are a
    `ConfigError` then); `credentials()` is what the port is added with."""

    def __init__(self, tls: ServerTLSConfig) -> None:
        self._tls = tls
        self._paths = [
            ("server.tls.key_file", tls.key_file),
            ("server.tls.cert_file", tls.cert_file),
        ]
        if tls.client_ca_file:
            self._paths.append(("server.tls.client_ca_file", tls.client_ca_file))
        self._lock = threading.Lock()  # grpc calls the fetcher on its own threads
        self._served = self._load(self._contents())
        self._refused: _Material | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._served.configuration(),
            self._fetch,
            require_client_authentication=self._tls.require_client_cert,
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's question before each new handshake: None keeps what the port serves."""
        try:
            with self._lock:
                return self._changed()
        except Exception:  # grpc would only log it; the port must keep serving either way
            log.exception("router certificate check failed; serving the current certificate")
            return None

    def _changed(self) -> grpc.ServerCertificateConfiguration | None:
        # The files' bytes, not their mtimes, say what changed: a rewrite of the same size
        # within the file system's clock tick would look unchanged. A few KiB a connection.
        try:
            found = self._contents()
        except ConfigError as exc:
            self._refuse(None, exc)
            return None
        if found == self._served or found == self._refused:
            return None
        try:
            self._served = self._load(found)
        except ConfigError as exc:
            self._refuse(found, exc)
            return None
        self._refused = None
        log.info("router certificate reloaded from %s", self._tls.cert_file)
        return self._served.configuration()

    def _refuse(self, found: _Material | None, exc: ConfigError) -> None:
        if found is None or found != self._refused:  # once per refused content, not per call
            log.warning("router certificate not reloaded (still serving the previous one): %s", exc)
        self._refused = found

    def _contents(self) -> _Material:
        key, cert, *ca = (_read(path, setting) for setting, path in self._paths)
        return _Material(key, cert, ca[0] if ca else None)

    def _load(self, found: _Material) -> _Material:
        """`found`, checked the way a handshake would use it: the key matches the certificate
        and the CA bundle parses. The check reads the files again, so they are compared with
        `found` after it: a file rewritten in between is not taken half-checked."""
        _check(self._tls)
        if self._contents() != found:
            raise ConfigError("server.tls: the files changed while they were read")
        return found


def _check(tls: ServerTLSConfig) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"server.tls: {tls.cert_file} and {tls.key_file} are not a certificate and its "
            f"key: {exc}"
        ) from exc
    if tls.client_ca_file:
        try:
            context.load_verify_locations(tls.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"server.tls.client_ca_file: {tls.client_ca_file} is not a PEM CA bundle: {exc}"
            ) from exc


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
