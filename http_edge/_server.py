"""The edge's uvicorn server: a TLS handshake bounded by `edge.header_timeout_s`.

asyncio and uvloop give a server's TLS handshake 60 s (`ssl_handshake_timeout`), and uvicorn
passes no other: a client that connected and never finished its handshake held its connection
(a file descriptor, a TLS object) six times as long as one that sends no request head
(`_slow_clients`, whose timer starts once the handshake is done). uvicorn's `startup` has no
setting for it, so for the way the edge listens over HTTPS (a host and a port, uvicorn's
"standard case") this is that `startup` with the timeout; any other way is uvicorn's own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable

import uvicorn
from uvicorn.config import STARTUP_FAILURE  # 3, for any failure (uvicorn >= 0.50, as copied)

__all__ = ["EdgeServer"]

log = logging.getLogger("uvicorn.error")  # uvicorn's own logger for a failed bind


class EdgeServer(uvicorn.Server):
    """uvicorn's server whose TLS handshakes last at most `handshake_timeout_s`."""

    def __init__(
        self,
        config: uvicorn.Config,
        handshake_timeout_s: float,
        listening: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.handshake_timeout_s = handshake_timeout_s
        self.listening = listening  # called with the port it listens on (0: the one chosen)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self._startup(sockets)
        if self.started and self.listening is not None and self.servers:
            bound = self.servers[0].sockets
            self.listening(bound[0].getsockname()[1] if bound else self.config.port)

    async def _startup(self, sockets: list[socket.socket] | None) -> None:
        config = self.config
        plain = not config.is_ssl or config.fd is not None or config.uds is not None
        if plain or sockets is not None:
            await super().startup(sockets)
            return
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        try:
            server = await asyncio.get_running_loop().create_server(
                create_protocol,
                host=config.host,
                port=config.port,
                ssl=config.ssl,
                backlog=config.backlog,
                ssl_handshake_timeout=self.handshake_timeout_s,
            )
        except OSError as exc:
            log.error(exc)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)
        assert server.sockets is not None
        self.servers = [server]
        self._log_started_message(server.sockets)
        self.started = True
