"""The edge tests' harness: a stub router on a real gRPC server and the edge on real uvicorn.

The stub router is a `RouterServiceServicer` whose behaviour each test sets with handler functions
(like httpx's MockTransport): `stub.on_chat = async def (request, context) -> ChatResponse`,
`stub.on_chat_stream = async generator (request, context)`, `stub.on_embed`, `stub.on_media`,
`stub.on_list_models`, `stub.on_store_response`.
It records every call with its metadata and sets `stub.cancelled` when a handler is cancelled (the
caller went away).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvicorn
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from clients import ErrorDetails, LocalHandlers, RouterClient, to_grpc_status
from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import router_service_pb2_grpc as rs_grpc
from http_edge import EdgeSettings, create_app
from http_edge._app import uvicorn_config
from http_edge._server import EdgeServer
from router_service.clock import SYSTEM_CLOCK, Clock
from tests.helpers import FilesUnimplemented, eventually, serve_grpc

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamHandler = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[rs.ChatStreamResponse]]
MediaStreamHandler = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


@dataclass
class Call:
    method: str
    request: Any
    metadata: dict[str, str]


async def _unimplemented(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no handler set in this test")


async def _unimplemented_stream(
    request: Any, context: grpc.aio.ServicerContext
) -> AsyncIterator[rs.ChatStreamResponse]:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no handler set in this test")
    yield rs.ChatStreamResponse()  # pragma: no cover


@dataclass
class StubRouter(FilesUnimplemented):
    target: str = ""
    on_chat: Handler = _unimplemented
    on_chat_stream: StreamHandler = _unimplemented_stream
    on_embed: Handler = _unimplemented
    on_media: Handler = _unimplemented
    on_media_stream: MediaStreamHandler = _unimplemented_stream
    on_list_models: Handler = _unimplemented
    on_store_response: Handler = _unimplemented
    calls: list[Call] = field(default_factory=list)
    # Set when a handler is cancelled: its caller went away or cancelled the call.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    health: health.aio.HealthServicer = field(default_factory=health.aio.HealthServicer)

    def _record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {key: value for key, value in context.invocation_metadata() or ()}
        self.calls.append(Call(method, request, metadata))

    async def _unary(self, handler: Handler, request: Any, context: Any) -> Any:
        try:
            return await handler(request, context)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def Chat(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("Chat", request, context)
        return await self._unary(self.on_chat, request, context)

    async def ChatStream(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rs.ChatStreamResponse]:
        self._record("ChatStream", request, context)
        try:
            async for message in self.on_chat_stream(request, context):
                yield message
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def MediaStream(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rs.MediaStreamResponse]:
        self._record("MediaStream", request, context)
        try:
            async for message in self.on_media_stream(request, context):
                yield message
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def Embed(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("Embed", request, context)
        return await self._unary(self.on_embed, request, context)

    async def Media(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("Media", request, context)
        return await self._unary(self.on_media, request, context)

    async def ListModels(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("ListModels", request, context)
        return await self._unary(self.on_list_models, request, context)

    # The edge never calls these: the generated servicer's UNIMPLEMENTED answer.
    def PickRoute(
        self, request: rs.PickRouteRequest, context: grpc.aio.ServicerContext
    ) -> rs.PickRouteResponse | Awaitable[rs.PickRouteResponse]:
        return super().PickRoute(request, context)

    def ReportOutcome(
        self, request: rs.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> rs.ReportOutcomeResponse | Awaitable[rs.ReportOutcomeResponse]:
        return super().ReportOutcome(request, context)

    async def StoreResponse(
        self, request: rs.StoreResponseRequest, context: grpc.aio.ServicerContext
    ) -> rs.StoreResponseResponse:
        # Not recorded in `calls`: it follows each stored Responses call, after its answer.
        answer: rs.StoreResponseResponse = await self._unary(
            self.on_store_response, request, context
        )
        return answer

    def LoadResponses(
        self, request: rs.LoadResponsesRequest, context: grpc.aio.ServicerContext
    ) -> rs.LoadResponsesResponse | Awaitable[rs.LoadResponsesResponse]:
        return super().LoadResponses(request, context)

    def DeleteResponse(
        self, request: rs.DeleteResponseRequest, context: grpc.aio.ServicerContext
    ) -> rs.DeleteResponseResponse | Awaitable[rs.DeleteResponseResponse]:
        return super().DeleteResponse(request, context)

    def CreateConversation(
        self, request: rs.CreateConversationRequest, context: grpc.aio.ServicerContext
    ) -> rs.CreateConversationResponse | Awaitable[rs.CreateConversationResponse]:
        return super().CreateConversation(request, context)

    def LoadConversation(
        self, request: rs.LoadConversationRequest, context: grpc.aio.ServicerContext
    ) -> rs.LoadConversationResponse | Awaitable[rs.LoadConversationResponse]:
        return super().LoadConversation(request, context)

    def UpdateConversation(
        self, request: rs.UpdateConversationRequest, context: grpc.aio.ServicerContext
    ) -> rs.UpdateConversationResponse | Awaitable[rs.UpdateConversationResponse]:
        return super().UpdateConversation(request, context)

    def DeleteConversation(
        self, request: rs.DeleteConversationRequest, context: grpc.aio.ServicerContext
    ) -> rs.DeleteConversationResponse | Awaitable[rs.DeleteConversationResponse]:
        return super().DeleteConversation(request, context)

    def StartBackgroundResponse(
        self, request: rs.StartBackgroundResponseRequest, context: grpc.aio.ServicerContext
    ) -> rs.StartBackgroundResponseResponse | Awaitable[rs.StartBackgroundResponseResponse]:
        return super().StartBackgroundResponse(request, context)

    def CancelResponse(
        self, request: rs.CancelResponseRequest, context: grpc.aio.ServicerContext
    ) -> rs.CancelResponseResponse | Awaitable[rs.CancelResponseResponse]:
        return super().CancelResponse(request, context)

    def ResumeResponse(
        self, request: rs.ResumeResponseRequest, context: grpc.aio.ServicerContext
    ) -> Iterator[rs.ResumeResponseResponse] | AsyncIterator[rs.ResumeResponseResponse]:
        return super().ResumeResponse(request, context)


async def abort_with(context: grpc.aio.ServicerContext, details: ErrorDetails) -> None:
    """End an RPC with the rich status the router would send for `details`."""
    await context.abort_with_status(to_grpc_status(details))


@asynccontextmanager
async def serve_stub_router() -> AsyncIterator[StubRouter]:
    """A stub router (and the standard health service, SERVING) on a loopback port."""
    router = StubRouter()
    async with serve_grpc(
        (rs_grpc.add_RouterServiceServicer_to_server, router),
        (health_pb2_grpc.add_HealthServicer_to_server, router.health),
    ) as target:
        await router.health.set("", health_pb2.HealthCheckResponse.SERVING)
        router.target = target
        yield router


@dataclass
class Edge:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    @property
    def base_url(self) -> str:
        scheme = "https" if self.server.config.is_ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


EdgeFactory = Callable[..., Awaitable[Edge]]


class _PromptServer(EdgeServer):
    """uvicorn's server that begins its stop as soon as `should_exit` is set, rather than at
    its main loop's next 0.1 s tick: half a tick on average, paid by every test's edge. The
    stop itself is the edge's own (`EdgeServer.shutdown`). The loop's per-second work is done
    once: the Date header (a test's edge lives for well under a second) and no request limit
    (none is set)."""

    def __init__(self, config: uvicorn.Config, handshake_timeout_s: float) -> None:
        self._exit = asyncio.Event()
        super().__init__(config, handshake_timeout_s)

    @property  # uvicorn's plain attribute: its signal handlers set it too
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    async def main_loop(self) -> None:
        if not await self.on_tick(0):  # the default headers, as uvicorn's first tick
            await self._exit.wait()


async def start_edge(
    settings: EdgeSettings,
    client: RouterClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    local: LocalHandlers | None = None,
    host: str = "127.0.0.1",
) -> Edge:
    """The edge on real uvicorn, on a loopback port (of `host`); stop it with `stop_edge`.
    `local`: the router's in-process handlers, which the edge then calls in-process
    (`switchboard serve`)."""
    app = create_app(settings, client, clock=clock, local=local)
    config = uvicorn_config(app, settings, host, 0)
    server = _PromptServer(config, settings.header_timeout_s)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # startup failed: raise its error
        return server.started

    try:  # (a hang guard: a loaded CI machine may take seconds)
        await eventually(started, within=30, what="uvicorn started")
    except BaseException:  # stopped, its listening socket closed: not leaked into later tests
        server.should_exit = True
        if not (await asyncio.wait([task], timeout=30))[0]:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return Edge(server, task, server.servers[0].sockets[0].getsockname()[1])


async def stop_edge(edge: Edge) -> None:
    """Graceful shutdown: open requests finish, the lifespan closes the app's router client."""
    edge.server.should_exit = True
    await edge.task
