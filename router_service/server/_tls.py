"""TLS and mutual TLS on the router's port (`server.tls`)."""

from __future__ import annotations

from pathlib import Path

import grpc

from router_service.config import ServerTLSConfig
from router_service.errors import ConfigError

__all__ = ["server_credentials"]


def server_credentials(tls: ServerTLSConfig) -> grpc.ServerCredentials:
    """The port's credentials; with `require_client_cert`, only clients whose certificate chains
    to `client_ca_file` get through the handshake."""
    key = _read(tls.key_file, "server.tls.key_file")
    cert = _read(tls.cert_file, "server.tls.cert_file")
    ca = _read(tls.client_ca_file, "server.tls.client_ca_file") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=tls.require_client_cert
    )


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
