"""The edge's channel to a router that serves TLS (`edge.router_tls`), and its rotation.

grpc's channels keep the credentials they were made with, so a rewritten client certificate or
CA bundle (cert-manager's renewal) would only be seen after a restart, and a certificate that
expires under a running edge fails its next handshake (a router replica restarting, a new one).
`RouterCertificates.watch` looks at the files every `reload_poll_s` and moves the router client
and the health probe to new channels when they changed and check out (`PemFiles`); calls under
way finish on the old channel.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from clients import RouterClient
from router_service.config import PemFiles, RouterTLSConfig
from router_service.telemetry import current

from ._health import RouterHealth

__all__ = ["RouterCertificates"]

log = logging.getLogger("switchboard.edge")


class RouterCertificates:
    """`edge.router_tls`'s files, read at start (a `ConfigError` when they do not load)."""

    def __init__(self, tls: RouterTLSConfig) -> None:
        self._tls = tls
        self._files = PemFiles.client("edge.router_tls", tls, log)
        current().metrics.certificate("client", self._files.current.expires_at)

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS to the router, with the client certificate when one is set."""
        return self._files.current.channel_credentials()

    async def refresh(self, client: RouterClient, probe: RouterHealth) -> bool:
        """Move `client` and `probe` to the files' new credentials when they changed."""
        found = self._files.reread()
        if found is None:
            return False
        current().metrics.certificate("client", found.expires_at)
        credentials = found.channel_credentials()
        client.use_credentials(credentials)
        await probe.use_credentials(credentials)
        log.info("edge: router TLS files reloaded (%s)", self._tls.cert_file or self._tls.ca_file)
        return True

    async def watch(self, client: RouterClient, probe: RouterHealth) -> None:
        """`refresh` every `reload_poll_s` seconds, until cancelled."""
        poll_s = self._tls.reload_poll_s
        if poll_s is None:
            return
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.refresh(client, probe)
            except Exception:  # the next look may do better; the edge serves on either way
                log.exception("edge: router TLS files not reloaded")
