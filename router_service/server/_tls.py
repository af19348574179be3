"""TLS and mutual TLS on the router's port (`server.tls`), with certificates rotated in place.

grpc asks a certificate fetcher before every new connection's handshake; ours reads the files
again (`PemFiles`: a few KiB) and, when they changed and check out, hands grpc the new pair and
client CA bundle. Connections already open keep the certificate they shook hands with; files
caught half-written leave the port serving what it had.
"""

from __future__ import annotations

import logging
import threading

import grpc

from router_service.config import PemFiles, PemSet, ServerTLSConfig
from router_service.telemetry import current

__all__ = ["CertificateFiles"]

log = logging.getLogger("switchboard.router")


def _configuration(found: PemSet) -> grpc.ServerCertificateConfiguration:
    assert found.key is not None and found.cert is not None  # both required by the config
    return grpc.ssl_server_certificate_configuration(
        [(found.key, found.cert)], root_certificates=found.ca
    )


class CertificateFiles:
    """The port's credentials over `server.tls`'s files. Build it before the port opens
    (unreadable or inconsistent files are a `ConfigError` then)."""

    def __init__(self, tls: ServerTLSConfig) -> None:
        self._tls = tls
        self._files = PemFiles.served("server.tls", tls, log)
        self._lock = threading.Lock()  # grpc calls the fetcher on its own threads
        current().metrics.certificate("server", self._files.current.expires_at)

    def expires_at(self) -> float | None:
        """When the certificate the port presents now expires."""
        return self._files.current.expires_at

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            _configuration(self._files.current),
            self._fetch,
            require_client_authentication=self._tls.require_client_cert,
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's question before each new handshake: None keeps what the port serves."""
        try:
            with self._lock:
                found = self._files.reread()
        except Exception:  # grpc would only log it; the port must keep serving either way
            log.exception("router certificate check failed; serving the current certificate")
            return None
        if found is None:
            return None
        current().metrics.certificate("server", found.expires_at)
        log.info("router certificate reloaded from %s", self._tls.cert_file)
        return _configuration(found)
