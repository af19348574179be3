"""The app factory, its lifespan, and `serve()`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc
import uvicorn
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from clients import RouterClient
from router_service._listening import socket_host
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.telemetry import client_observer

from . import (
    _admin,
    _routes_batches,
    _routes_chat,
    _routes_client_secrets,
    _routes_compact,
    _routes_completions,
    _routes_conversations,
    _routes_gemini,
    _routes_media,
    _routes_messages,
    _routes_misc,
    _routes_ollama,
    _routes_realtime,
    _routes_realtime_calls,
    _routes_responses,
    _routes_stored,
    _routes_uploads,
    _telemetry,
)
from ._admin_query import AdminQueryCredentials
from ._body_deadline import BodyDeadline
from ._cors import cors_middleware, refusal_cors
from ._cuts import quiet_cuts
from ._errors import install_error_handlers
from ._health import RouterHealth
from ._hot import HeadAsGet, HotRoutes
from ._https import ServedCertificates
from ._paths import tidied
from ._request_id import RequestId
from ._server import EdgeServer
from ._settings import EdgeSettings
from ._slow_clients import edge_protocol
from ._state import EdgeState
from ._tls import RouterCertificates
from ._websockets import lazy_websocket_protocol

if TYPE_CHECKING:  # the in-process router's (`switchboard serve`): imported by `_local_channel`
    from clients import LocalChannel, LocalHandlers

__all__ = ["EdgeApp", "create_app", "serve", "uvicorn_config"]

# What the edge's router target is called when the router is in its process (`local`).
IN_PROCESS = "in-process"
# How long a shutdown waits for open requests (streams included) before cancelling them; the
# cancellation reaches the router, which aborts the upstream requests.
SHUTDOWN_GRACE_S = 30

# FastAPI ≥ 0.16x traces and measures every request itself once OpenTelemetry's global providers
# are set (our telemetry sets them): a second SERVER span and a second
# `http.server.request.duration` per request, beside ours (`_server_telemetry.py`), at ~10 % of the
# edge's CPU. The edge's telemetry is ours alone.
_NO_FASTAPI_TELEMETRY: dict[str, Any] = (
    {
        "telemetry": {
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        }
    }
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


class EdgeApp(FastAPI):
    """FastAPI with the edge's own middlewares (`outer_middleware`: server telemetry, CORS, the
    body deadline, HEAD as GET) and
    the hot routes (`_hot.HotRoutes`) outside Starlette's stack.

    Every OpenAI call takes one of the hot routes; inside Starlette's stack it would also pay
    for the error, body-limit and exception middlewares it does not use (it renders its own
    errors). Everything else still goes through the whole stack, inside ours.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs, **_NO_FASTAPI_TELEMETRY)
        self.outer_middleware: list[Middleware] = []  # outermost first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Before every middleware and route: each sees the path its route has (`_paths`).
        await super().__call__(tidied(scope), receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = HotRoutes(super().build_middleware_stack())
        for middleware in reversed(self.outer_middleware):
            app = middleware.cls(app, *middleware.args, **middleware.kwargs)
        return app


# The modules of the edge's routes, in the order they are matched.
_ROUTES = (
    _routes_chat,
    _routes_completions,
    _routes_messages,
    _routes_compact,
    _routes_gemini,
    _routes_responses,
    _routes_stored,
    _routes_conversations,
    _routes_batches,
    _routes_uploads,
    _routes_misc,
    _routes_media,
    _routes_realtime,
    _routes_realtime_calls,
    _routes_client_secrets,
    _routes_ollama,  # after the others: none of theirs waits behind its routes
    _telemetry,
    _admin,
)


def create_app(
    settings: EdgeSettings,
    client: RouterClient | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    local: LocalHandlers | None = None,
) -> EdgeApp:
    """The edge as an ASGI app.

    The app opens its own `RouterClient` at startup and closes it at shutdown; an injected `client`
    is used as is and left open (its owner closes it). `clock`: what the times the edge writes
    are read from (a Responses API answer's `created_at`, a legacy completion's `created`, the
    Ollama API's `created_at`). `local`: the handlers of a router in
    this process (`RouterServer.in_process`: `switchboard serve`), which the edge's calls and
    health checks then reach in-process, rather than `settings.router_target`.
    """
    state = EdgeState(settings=settings, client=client, clock=clock)
    quiet_cuts()  # uvicorn's ERROR for a body the edge cut on purpose (`_cuts`)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            tls = settings.router_tls if local is None else None  # in-process: no TLS
            certificates = RouterCertificates(tls) if tls is not None else None
            credentials = certificates.credentials() if certificates is not None else None
            if client is None:
                router = _own_client(settings, credentials, local)
                state.client = await stack.enter_async_context(router)
            probe = None if local is None else _local_channel(local)
            state.probe = RouterHealth(state.router().target, credentials, channel=probe)
            stack.push_async_callback(state.probe.aclose)
            if certificates is not None and client is None:  # an injected client is its owner's
                watch = certificates.watch(state.router(), state.probe)
                watcher = asyncio.create_task(watch, name="switchboard-edge-tls-watch")
                stack.push_async_callback(_stopped, watcher)
            try:
                yield
            finally:
                state.client, state.probe = client, None

    app = EdgeApp(
        title="Switchboard edge",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        redirect_slashes=False,  # a slash is not redirected but tidied away (`_paths`)
        docs_url=None,
        redoc_url=None,
    )
    app.state.edge = state
    install_error_handlers(app, _routes())
    for routes in _ROUTES:
        app.include_router(routes.router)
    _telemetry.instrument(app)  # when telemetry is configured: spans and metrics per request
    _add_middleware(app, settings, clock)
    return app


def _add_middleware(app: EdgeApp, settings: EdgeSettings, clock: Clock) -> None:
    """The edge's own middlewares, inside telemetry's (`_telemetry.instrument`)."""
    # Inside telemetry (its span's trace id), outside CORS (its preflight answers have one too).
    app.outer_middleware.append(Middleware(RequestId, clock=clock))
    cors = cors_middleware(settings)
    if cors is not None:
        app.outer_middleware.append(cors)
    # Inside telemetry and CORS, which see its 408 as any other answer.
    app.outer_middleware.append(Middleware(BodyDeadline, timeout_s=settings.body_timeout_s))
    app.outer_middleware.append(Middleware(HeadAsGet, own=_own_heads()))
    if settings.admin_token is not None:  # off, every admin path is a 404 that reads nothing
        # In Starlette's stack (before its routing: a redirect would repeat the URL), which
        # the hot routes (`HotRoutes`: every completion) do not pass.
        app.add_middleware(AdminQueryCredentials)


def _own_heads() -> list[BaseRoute]:
    """The edge's routes that take HEAD themselves (`HeadAsGet` leaves theirs to them)."""
    return [route for route in _routes() if "HEAD" in getattr(route, "methods", ())]


def _routes() -> list[BaseRoute]:
    """The routes of the edge's route modules."""
    return [route for module in _ROUTES for route in module.router.routes]


def _own_client(
    settings: EdgeSettings,
    credentials: grpc.ChannelCredentials | None,
    local: LocalHandlers | None,
) -> RouterClient:
    """The client the app opens: to `settings.router_target`, or in-process to `local`."""
    return RouterClient(
        settings.router_target if local is None else IN_PROCESS,
        credentials=credentials,
        max_message_bytes=_message_limit(settings),
        ready_wait_s=settings.router_ready_wait_s,
        # The call is all the edge's span does: a CLIENT span only for a call that fails.
        observer=client_observer(in_process=local is not None, call_spans=False),
        channel=None if local is None else _local_channel(local),
    )


def _local_channel(local: LocalHandlers) -> LocalChannel:
    """A channel to the router in this process; a two-process edge never imports its module."""
    from clients import LocalChannel

    return LocalChannel(local)


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait((task,))  # which, unlike awaiting the task, does not raise its cancel


def _message_limit(settings: EdgeSettings) -> int:
    """The router client's gRPC message limit: room for the protobuf of the largest body the
    edge accepts (never larger than its JSON, less a little framing) or the largest upload, at
    least gRPC's default."""
    largest = max(settings.max_body_bytes, settings.upload_limit)
    return max(16 * 1024 * 1024, largest + 1024 * 1024)


def uvicorn_config(
    app: FastAPI,
    settings: EdgeSettings,
    host: str = "127.0.0.1",
    port: int = 8080,
) -> uvicorn.Config:
    """How the edge runs under uvicorn: httptools with the settings' header timeout and
    connection cap (`_slow_clients`), no access log, lifespan on, bounded grace; HTTPS with
    `settings.tls` (its files read here: a `ConfigError` when they do not load).

    `loop` only matters when uvicorn creates the loop (`uvicorn.Server.run`); `serve()` runs on
    the caller's loop.
    """
    tls = settings.tls
    served = ServedCertificates(tls) if tls is not None else None
    return uvicorn.Config(
        app,
        # `[::1]` as `::1` (the resolver takes no brackets), as `check_listening` took it.
        host=socket_host(host),
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio",
        http=edge_protocol(
            settings.header_timeout_s,
            settings.max_connections,
            settings.body_timeout_s,
            settings.max_head_bytes,
            settings.max_pipelined,
            refusal_cors(settings),
        ),
        # uvicorn calls it as its protocol class; a function, so `websockets` loads on the first
        # WebSocket upgrade (`/v1/realtime`), not at start-up.
        ws=lazy_websocket_protocol,  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
        log_config=None,  # uvicorn logs through the root logger (JSON lines, see telemetry)
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        ssl_context_factory=None if served is None else lambda *_: served.context(),
    )


class _Unsignalled(EdgeServer):
    """A uvicorn server that takes no signal: only a cancellation stops it (`serve`). Forced
    out of its drain (`force_exit`), it still shuts its app down (uvicorn skips the lifespan's
    shutdown then, and the loop's end cancels it instead, logging a traceback)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit and not self.lifespan.shutdown_event.is_set():
            await self.lifespan.shutdown()


async def serve(
    settings: EdgeSettings,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    local: LocalHandlers | None = None,
    signals: bool = True,
    cut: Callable[[], Awaitable[None]] | None = None,
    listening: Callable[[int], None] | None = None,
) -> None:
    """Run the edge until cancelled (or until SIGINT/SIGTERM), then shut down gracefully.

    On cancellation the server stops accepting, lets open requests finish, runs the lifespan
    shutdown (closing the router client), and re-raises `CancelledError`. `local`: a router in
    this process, called in-process (`create_app`). `signals=False`: SIGINT and SIGTERM are
    left to the process's own handlers, which cancel this (`switchboard serve`: uvicorn's
    would raise each again once it has drained, a second stop of the router after it).

    Cancelled again during the drain (a second SIGTERM), it runs `cut` (`serve`: the router's
    stop without grace, which ends the open requests' calls, so they answer at once) and waits
    for the drain to end; without `cut`, or a third time, it stops waiting for open requests.
    Either way the app still shuts down: no cancelled lifespan, no traceback. `listening`: called
    once it listens, with its port (for port 0, the one it got).
    """
    app = create_app(settings, local=local)
    config = uvicorn_config(app, settings, host, port)
    kind = EdgeServer if signals else _Unsignalled
    server = kind(config, settings.header_timeout_s, listening)
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await _drained(server, task, cut)
        raise


async def _drained(
    server: uvicorn.Server,
    task: asyncio.Task[None],
    cut: Callable[[], Awaitable[None]] | None,
) -> None:
    """Wait for `task` (the server's, draining) to end; each cancellation of this wait cuts
    the drain shorter (`serve`)."""
    cutting: asyncio.Future[None] | None = None
    try:
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if cut is not None and cutting is None:
                    cutting = asyncio.ensure_future(cut())  # awaited below, whatever comes
                else:
                    server.force_exit = True
    finally:  # the server's task may also end by raising
        if cutting is not None:
            # Seen through whatever comes: left behind, the loop's end would cancel the
            # router's stop mid-way (its leases not given back, its runtime not closed).
            while not cutting.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait((cutting,))
            cutting.result()
