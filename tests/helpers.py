"""Small test utilities shared across the suite."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar

import grpc
from aiohttp import web

from clients.switchboard.v1 import router_service_pb2_grpc as rs_grpc
from router_service.clock import ManualClock
from router_service.telemetry.testing import TelemetryCapture

T = TypeVar("T")

# How often `eventually` re-checks its condition; the deadline, not this, bounds the wait.
POLL_INTERVAL_S = 0.005

# A generated `add_<Service>Servicer_to_server` function and the servicer it adds.
Servicer = tuple[Callable[[Any, grpc.aio.Server], None], object]


def tracked(kinds: type[T] | tuple[type[T], ...]) -> list[T]:
    """The objects the garbage collector tracks whose type is one of `kinds` (or a subclass).
    Judged by `type()`, not `isinstance`: that reads the `__class__` of every other object of
    the heap too, and the openai SDK's lazy proxies (`openai.resources`' modules, its numpy and
    pandas extras) import what they stand for on that read. One such scan in an xdist worker
    that had run an SDK test imported ~1,550 modules (1 to 17 s on a loaded machine), and
    every later collection of that worker went over them."""
    return [o for o in gc.get_objects() if issubclass(type(o), kinds)]


def free_port() -> int:
    """A loopback port nothing listens on now, for a server that must be told its port (a
    process started with a config file)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def close_listener(server: asyncio.Server) -> None:
    """Close a listening asyncio server without dropping, unclosed, a connection it accepted a
    moment before. asyncio (3.11) accepts in one loop turn and makes the connection's transport
    in the next (`_accept_connection2`), and that step fails if the server was closed in
    between (`Server._attach` asserts it is open): the accepted socket is then dropped as it is,
    a ResourceWarning in some later test. So accepting stops first (the listener's reader
    removed: nothing more is accepted), then two turns pass, each one of asyncio's steps for a
    connection already accepted (its transport made; `connection_made`, the server's callback,
    which can close it), and only then the listener closes."""
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        loop.remove_reader(sock.fileno())
    for _ in range(2):
        await asyncio.sleep(0)  # one turn of the loop each, not a wait for time
    server.close()
    await server.wait_closed()


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str = "condition"
) -> None:
    """Wait until an async condition holds, failing after `within` seconds. For effects of
    another task (a lease released after a cancellation) that have no event of their own.
    `within` is a hang guard, not a measure: generous, as a loaded CI machine is slow."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {within}s")
        await asyncio.sleep(POLL_INTERVAL_S)


async def advance_until_done(
    clock: ManualClock, step: float, running: asyncio.Future[Any], *, what: str
) -> None:
    """Advance `clock` by `step` until `running` is done: for a window on the router's clock
    that may begin after the test saw its cause (a stream guard's stall window starts at the
    last chunk it relayed, which may reach it after the upstream went quiet)."""

    async def done() -> bool:
        clock.advance(step)
        return running.done()

    await eventually(done, what=what)


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on a free loopback port; yields its base URL ("http://127.0.0.1:N").
    For upstreams the fake cannot play (one-off wire behaviour in a single test)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_grpc(
    *servicers: Servicer,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    handlers: Sequence[grpc.GenericRpcHandler] = (),
    credentials: grpc.ServerCredentials | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> AsyncIterator[str]:
    """Serve servicers (`(add_XServicer_to_server, servicer)` pairs) and generic handlers on a
    grpc.aio server on a loopback port (`port`, or a free one; TLS with `credentials`; `host`:
    another loopback address, 127.0.0.2, for a second server on the same port); yields
    its target ("127.0.0.1:N"). Stops the server without grace on exit: what the test opened on it
    (channels, clients) it closes first, inside. For the tests that need a real server on the
    wire rather than a servicer called directly."""
    server = grpc.aio.server(handlers=handlers, interceptors=interceptors, options=options)
    for add_to_server, servicer in servicers:
        add_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port(f"{host}:{port}")
    else:
        port = server.add_secure_port(f"{host}:{port}", credentials)
    await server.start()
    try:
        yield f"{host}:{port}"
    finally:
        await server.stop(grace=None)


@contextlib.contextmanager
def counted_tasks() -> Iterator[list[str]]:
    """The tasks created on the running loop meanwhile, by their coroutines' qualified names
    (a task factory: what a piece of code costs in tasks, without timing anything)."""
    loop = asyncio.get_running_loop()
    made: list[str] = []

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Generator[Any, None, T] | Coroutine[Any, Any, T],  # what a task factory is given
        **kw: Any,
    ) -> asyncio.Task[T]:
        made.append(getattr(coro, "__qualname__", type(coro).__name__))
        return asyncio.Task(coro, loop=loop, **kw)

    previous = loop.get_task_factory()
    loop.set_task_factory(factory)
    try:
        yield made
    finally:
        loop.set_task_factory(previous)


class FilesUnimplemented(rs_grpc.RouterServiceServicer):
    """The files and batches RPCs, and Realtime's, as the generated base answers them
    (UNIMPLEMENTED), named for the type checker: the tests' stub routers keep no files and
    open no sessions."""

    UploadFile = rs_grpc.RouterServiceServicer.UploadFile
    ListFiles = rs_grpc.RouterServiceServicer.ListFiles
    GetFile = rs_grpc.RouterServiceServicer.GetFile
    GetFileContent = rs_grpc.RouterServiceServicer.GetFileContent
    DeleteFile = rs_grpc.RouterServiceServicer.DeleteFile
    CreateUpload = rs_grpc.RouterServiceServicer.CreateUpload
    AddUploadPart = rs_grpc.RouterServiceServicer.AddUploadPart
    CompleteUpload = rs_grpc.RouterServiceServicer.CompleteUpload
    CancelUpload = rs_grpc.RouterServiceServicer.CancelUpload
    CreateBatch = rs_grpc.RouterServiceServicer.CreateBatch
    GetBatch = rs_grpc.RouterServiceServicer.GetBatch
    ListBatches = rs_grpc.RouterServiceServicer.ListBatches
    CancelBatch = rs_grpc.RouterServiceServicer.CancelBatch
    Realtime = rs_grpc.RouterServiceServicer.Realtime
    CreateRealtimeClientSecret = rs_grpc.RouterServiceServicer.CreateRealtimeClientSecret
    CreateRealtimeCall = rs_grpc.RouterServiceServicer.CreateRealtimeCall
    HangupRealtimeCall = rs_grpc.RouterServiceServicer.HangupRealtimeCall


def metric_values(captured: TelemetryCapture, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    """The metric `name`'s values by their sorted attributes, as `captured` read them now."""
    return {tuple(sorted(labels.items())): point.value for labels, point in captured.points(name)}


async def refusals_on_another_loop(*uses: Callable[[], Awaitable[Any]]) -> list[str]:
    """What each of `uses` raised (a RuntimeError each, else AssertionError) run on another
    event loop, a thread's: a client's objects serve only the loop they were made on."""

    async def elsewhere() -> list[str]:
        refusals = []
        for use in uses:
            try:
                await use()
            except RuntimeError as refused:
                refusals.append(str(refused))
            else:
                raise AssertionError(f"{use} ran on another event loop")
        return refusals

    return await asyncio.to_thread(asyncio.run, elsewhere())
