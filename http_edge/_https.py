"""HTTPS on the edge's port (`edge.tls`), with certificates rotated in place.

The same promise as the router's port (`router_service/server/_tls.py`): before each handshake
the files are read again, and a connection shakes hands with the new certificate, key and client
CA bundle once they changed and check out. Python's TLS offers one hook that runs for every
ClientHello, with or without a server name: the context's `sni_callback`, which may move the
connection to another context. So the edge keeps one context per set of files and moves each
new connection to the newest; connections already open keep theirs.
"""

from __future__ import annotations

import logging
import ssl

from router_service.config import PemFiles, ServerTLSConfig
from router_service.errors import ConfigError
from router_service.telemetry import current

__all__ = ["ServedCertificates"]

log = logging.getLogger("switchboard.edge")


class ServedCertificates:
    """`edge.tls`'s files as the TLS context uvicorn serves with; read at construction (a
    `ConfigError` when they do not load)."""

    def __init__(self, tls: ServerTLSConfig) -> None:
        self._tls = tls
        self._files = PemFiles.served("edge.tls", tls, log)
        self._served = self._files.current  # the set `_context` was built from
        try:
            self._context = self._new_context()
        except (ssl.SSLError, OSError) as exc:  # rewritten since they were checked
            raise ConfigError(f"edge.tls: the files did not load: {exc}") from exc
        current().metrics.certificate("server", self._served.expires_at)

    def context(self) -> ssl.SSLContext:
        """The context of the newest files (the one uvicorn listens with, at start)."""
        return self._context

    def _new_context(self) -> ssl.SSLContext:
        tls = self._tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            context.load_verify_locations(tls.client_ca_file)
            # As on the router's port: a certificate is checked when one comes, and required
            # only with require_client_cert.
            context.verify_mode = (
                ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
            )
        context.set_alpn_protocols(["http/1.1"])
        context.sni_callback = self._hello
        return context

    def _hello(self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        """Every ClientHello: new files first become a context, then the connection uses the
        newest context. Never raises: a failure here would fail the handshake."""
        try:
            self._files.reread()
            # Compared, not taken from reread(): a context that failed to build is tried again.
            if (latest := self._files.current) != self._served:
                self._context = self._new_context()
                self._served = latest
                current().metrics.certificate("server", latest.expires_at)
                log.info("edge certificate reloaded from %s", self._tls.cert_file)
        except (ssl.SSLError, OSError) as exc:  # rewritten again since they were checked
            log.warning("edge certificate not reloaded (still serving the previous one): %s", exc)
        except Exception:
            log.exception("edge certificate check failed; serving the current certificate")
        if connection.context is not self._context:
            connection.context = self._context
