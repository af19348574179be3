"""The router's handlers for callers in its own process (`clients.LocalChannel`: `switchboard
serve`): the generic handlers its port serves, found through the same interceptors as a call
on the port finds them (tracing, then authentication, limits and stream slots), as grpc.aio's
interceptor pipeline runs them; and the calls under way, which a stop ends as it ends those of
the port (a grace, then cancelled)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import grpc

__all__ = ["InProcessHandlers"]


class _CallDetails(NamedTuple):
    """grpc's `HandlerCallDetails`: what an interceptor and a generic handler look a call up by."""

    method: str
    invocation_metadata: tuple[tuple[str, Any], ...]


class InProcessHandlers:
    """Kept by `RouterServer`: every generic handler it adds to its grpc server is added here
    too (`add_generic_rpc_handlers`), so both entrances serve the same methods."""

    def __init__(
        self,
        server: grpc.aio.Server,
        interceptors: Sequence[grpc.aio.ServerInterceptor],
        max_request_bytes: int,
    ) -> None:
        self._server = server
        self._interceptors = tuple(interceptors)
        self._generic: list[grpc.GenericRpcHandler] = []
        self._limit = max_request_bytes
        self._serving = False  # from the server's start
        self._running: set[asyncio.Task[Any]] = set()

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._generic.extend(handlers)
        self._server.add_generic_rpc_handlers(handlers)

    def start(self) -> None:
        self._serving = True

    @property
    def serving(self) -> bool:
        return self._serving

    @property
    def max_request_bytes(self) -> int:
        return self._limit

    async def find(
        self, method: str, metadata: tuple[tuple[str, Any], ...]
    ) -> grpc.RpcMethodHandler | None:
        """Awaited in the call's task, which a stop then waits for (and cancels after its
        grace)."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return await self._intercepted(0, _CallDetails(method, metadata))

    async def _intercepted(self, index: int, details: _CallDetails) -> grpc.RpcMethodHandler | None:
        if index == len(self._interceptors):
            return self._lookup(details)
        continuation: Callable[[Any], Awaitable[Any]] = lambda d: self._intercepted(index + 1, d)  # noqa: E731
        handler: grpc.RpcMethodHandler | None = await self._interceptors[index].intercept_service(
            continuation, details
        )
        return handler

    def _lookup(self, details: _CallDetails) -> grpc.RpcMethodHandler | None:
        for generic in self._generic:
            handler: grpc.RpcMethodHandler | None = generic.service(details)
            if handler is not None:
                return handler
        return None

    async def stop(self, grace: float | None) -> None:
        """Take no new calls; give those under way `grace` seconds (None: as long as they
        take), then cancel them (their cleanup is the server's to wait for: `RunningCalls`)."""
        self._serving = False
        running = list(self._running)
        if running and (grace is None or grace > 0):
            await asyncio.wait(running, timeout=grace)
        for task in running:
            task.cancel()
