"""`unless_disconnected` (http_edge/_disconnect.py): a router call runs in the request's own task,
with the connection telling of the client going away; a disconnect cancels the call (see
test_edge_chat.py for the end-to-end cases), a finished call is left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Request

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge._disconnect import unless_disconnected
from http_edge._errors import EdgeError
from http_edge._slow_clients import CONNECTION, edge_protocol
from tests.helpers import counted_tasks, eventually
from tests.http_edge.edge_messages import completion, route
from tests.http_edge.harness import StubRouter

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": False}


async def test_a_router_call_gets_no_task_of_its_own_nor_a_watcher(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def on_chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("Hello!"), route=route())

    stub.on_chat = on_chat
    with counted_tasks() as made:
        response = await http.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello!"
    assert made.count("_disconnected") == 0  # the connection tells of a disconnect
    # The router call ran in the request's task, not in one made for it.
    assert not [name for name in made if name.startswith("RouterClient.")]


class _GoneClient:
    """What `Request.receive` gives once the client has gone, on a server other than the edge's
    own (a watcher task then waits for the disconnect)."""

    scope: dict[str, Any] = {}

    async def receive(self) -> dict[str, str]:
        return {"type": "http.disconnect"}


async def _disconnected_work(raises: type[BaseException] | None) -> str:
    try:
        await asyncio.Event().wait()  # a router call that only a cancellation ends
    except asyncio.CancelledError:
        if raises is not None:
            raise raises("the call ended its own way") from None
        raise
    return "unreachable"


@pytest.mark.parametrize("raises", [None, RuntimeError], ids=["cancelled", "own-error"])
async def test_a_disconnect_cancels_the_call_and_leaves_the_task_uncancelled(
    raises: type[BaseException] | None,
) -> None:
    task = asyncio.current_task()
    assert task is not None
    request: Any = _GoneClient()
    with pytest.raises(EdgeError if raises is None else raises) as caught:
        await unless_disconnected(request, _disconnected_work(raises))
    if raises is None:
        assert isinstance(caught.value, EdgeError) and caught.value.status == 499
    # The cancellation was the disconnect's, not this task's caller's: nothing is left pending.
    assert task.cancelling() == 0


class _WatchingApp:
    """An ASGI app on the edge's own server (`EdgeHttpProtocol`): it reads the request's body,
    waits for `go_on`, then runs a call that only a departure ends under `unless_disconnected`."""

    def __init__(self) -> None:
        self.go_on, self.ended = asyncio.Event(), asyncio.Event()
        self.scopes: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            self.scopes.append(scope)  # the body under way
        self.scopes.append(scope)
        await self.go_on.wait()  # the edge busy with the request while the client leaves
        try:
            await unless_disconnected(Request(scope, receive), _disconnected_work(None))
        except EdgeError:
            self.ended.set()


@asynccontextmanager
async def _served(app: _WatchingApp) -> AsyncIterator[int]:
    config = uvicorn.Config(app, port=0, http=edge_protocol(10.0, None), lifespan="off")
    server = uvicorn.Server(config)
    served = asyncio.create_task(server.serve())
    try:
        await eventually(_truthy(lambda: server.started), what="uvicorn started")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = server.force_exit = True  # a call left running fails fast
        await served


async def test_a_client_gone_before_the_watch_begins_is_noticed_on_the_edges_server() -> None:
    """The edge's connection tells of a departure by a callback: a client that left before the
    request started watching (while the edge was busy with it) must still end the call, as the
    `http.disconnect` a watcher's `receive` gets at once did (not run it to its end unwatched)."""
    app = _WatchingApp()
    async with _served(app) as port:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        await eventually(_truthy(lambda: app.scopes), what="the request under way")
        writer.close()
        await writer.wait_closed()
        connection = app.scopes[0][CONNECTION]
        await eventually(_truthy(connection.transport.is_closing), what="the connection lost")
        app.go_on.set()
        await asyncio.wait_for(app.ended.wait(), 15.0)  # the call ended by the departure


async def test_a_client_gone_after_a_large_body_is_noticed_on_the_edges_server() -> None:
    """uvicorn stops reading a connection while more than 64 KiB of body wait for the app, and
    only a `receive` reads it again: with no watcher calling it, a client that sent a large
    body (a long conversation, an image) and left was never noticed (its EOF never read)."""
    app = _WatchingApp()
    async with _served(app) as port:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        rest = b"x" * 100_000
        head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n{" % (1 + len(rest))
        writer.write(head)
        await eventually(_truthy(lambda: app.scopes), what="the body under way")
        writer.write(rest)  # past uvicorn's high-water mark at once
        await eventually(_truthy(lambda: len(app.scopes) > 1), what="the body read")
        assert app.scopes[0][CONNECTION].flow.read_paused  # uvicorn stopped reading
        writer.close()
        await writer.wait_closed()
        app.go_on.set()
        await asyncio.wait_for(app.ended.wait(), 15.0)  # the call ended by the departure


def _truthy(found: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    async def holds() -> bool:
        return bool(found())

    return holds
