"""The edge as an HTTP server, over raw loopback sockets on a real uvicorn edge: a pipelining
client's departure, the refusals' lingering and logging, and `x-request-id` on every answer."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.helpers import eventually
from tests.http_edge.harness import EdgeFactory, StubRouter
from tests.http_edge.test_slow_clients import ANSWER_S, PING, _called, connected

pytestmark = pytest.mark.timeout(30)

MODELS = b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"


async def test_a_pipelining_client_that_leaves_cancels_the_router_call(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    # The second request arrives while the first waits for the router: uvicorn stops reading
    # the connection then, and the client's end went unseen until the call was over.
    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        await asyncio.Event().wait()  # only a cancellation ends it
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    edge = await start_edge()
    async with connected(edge) as (_, writer):
        writer.write(MODELS)
        await writer.drain()
        await _eventually_called(stub)
        writer.write(PING)  # pipelined behind the call
        await writer.drain()
    await asyncio.wait_for(stub.cancelled.wait(), ANSWER_S)


async def _eventually_called(stub: StubRouter) -> None:
    await eventually(partial(_called, stub), within=ANSWER_S, what="the router called")
