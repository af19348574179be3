"""Per-application runtime: the state plus the tasks a shutdown must cancel and wait for."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ._state import FakeUpstreamState


class Runtime:
    """Tracks live handler tasks so aclose() can end stalled requests instead of waiting on them."""

    def __init__(self, state: FakeUpstreamState) -> None:
        self.state = state
        # Set while the server shuts down, so a cancelled handler is recorded as "shutdown"
        # rather than as a client disconnect.
        self.closing = False
        self.handler_tasks: set[asyncio.Task[object]] = set()
        # aiohttp runs each connection in its own task (request.task); it must end too.
        self.connection_tasks: set[asyncio.Task[object]] = set()

    def track(self, handler: asyncio.Task[object] | None, connection: asyncio.Task[None]) -> None:
        if handler is not None:
            self.handler_tasks.add(handler)
        if connection not in self.connection_tasks:
            self.connection_tasks.add(connection)
            connection.add_done_callback(self.connection_tasks.discard)

    def untrack(self, handler: asyncio.Task[object] | None) -> None:
        if handler is not None:
            self.handler_tasks.discard(handler)

    async def cancel_handlers(self, grace_s: float) -> None:
        self.closing = True
        tasks = [t for t in self.handler_tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    async def wait_connections(self, grace_s: float) -> None:
        tasks = [t for t in self.connection_tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)


RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("fake_upstream_runtime", Runtime)


def runtime_of(request: web.Request) -> Runtime:
    return request.app[RUNTIME_KEY]
