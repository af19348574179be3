"""The edge's channel to a router that serves TLS (`edge.router_tls`)."""

from __future__ import annotations

from pathlib import Path

import grpc

from ._settings import EdgeSettings

__all__ = ["router_credentials"]


def router_credentials(settings: EdgeSettings) -> grpc.ChannelCredentials | None:
    """None for a plaintext router; else TLS, with a client certificate when one is set."""
    tls = settings.router_tls
    if tls is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file),
        private_key=_read(tls.key_file),
        certificate_chain=_read(tls.cert_file),
    )


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path is not None else None
