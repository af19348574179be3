"""The edge's uvicorn server: a TLS handshake bounded by `edge.header_timeout_s`; a stop that
waits for its connections and requests themselves, not for uvicorn's clock.

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
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE  # 3, for any failure (uvicorn >= 0.50, as copied)

__all__ = ["EdgeServer"]

log = logging.getLogger("uvicorn.error")  # uvicorn's own logger (a failed bind, the stop)


class _Leaving(set[Any]):
    """One of uvicorn's server-state sets (open connections, requests' tasks) that calls `left`
    whenever something leaves it (its protocols `discard` or `remove` it)."""

    def __init__(self, left: Callable[[], None]) -> None:
        super().__init__()
        self._left = left

    def discard(self, item: Any) -> None:
        super().discard(item)
        self._left()

    def remove(self, item: Any) -> None:
        super().remove(item)
        self._left()


class EdgeServer(uvicorn.Server):
    """uvicorn's server whose TLS handshakes last at most `handshake_timeout_s`, and whose stop
    ends as soon as its connections and requests have."""

    def __init__(
        self,
        config: uvicorn.Config,
        handshake_timeout_s: float,
        listening: Callable[[int], None] | None = None,
    ) -> None:
        self._changed = asyncio.Event()  # a connection or task left, or the stop was forced
        self._forced = False
        super().__init__(config)
        self.server_state.connections = _Leaving(self._changed.set)
        self.server_state.tasks = _Leaving(self._changed.set)
        self.handshake_timeout_s = handshake_timeout_s
        self.listening = listening  # called with the port it listens on (0: the one chosen)

    @property  # uvicorn's plain attribute (a second signal, `serve`'s third cancel set it)
    def force_exit(self) -> bool:
        return self._forced

    @force_exit.setter
    def force_exit(self, value: bool) -> None:
        self._forced = value
        self._changed.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's stop, but for its waits: accepting ends, each connection is asked to close
        (an idle one at once, one answering after its answer), and within the graceful timeout
        the connections, then the requests' tasks, are waited for until they have left."""
        log.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                await self._emptied(state.connections, "connections to close")
                await self._emptied(state.tasks, "background tasks to complete")
                for server in self.servers:
                    await server.wait_closed()
        except TimeoutError:
            log.error(
                "Cancel %s running task(s), timeout graceful shutdown exceeded", len(state.tasks)
            )
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _emptied(self, leaving: set[Any], what: str) -> None:
        """Until nothing is left in `leaving` or the stop is forced (uvicorn's words logged)."""
        if leaving and not self.force_exit:
            log.info("Waiting for %s. (CTRL+C to force quit)", what)
        while leaving and not self.force_exit:
            self._changed.clear()
            await self._changed.wait()

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
