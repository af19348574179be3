"""A realtime caller that stops reading: backpressure stops the router reading the upstream
socket, so the pong to its ping (`streams.realtime_ping_s`) is never read and aiohttp drops the
session. The stall is the caller's: it hears so, and the healthy deployment is not cooled (the
next session goes to it again)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.helpers import serve_app
from tests.router_service.server.test_realtime_rpc import open_session, realtime_config

pytestmark = pytest.mark.timeout(60)

_CHUNK = orjson.dumps({"type": "response.output_text.delta", "delta": "x" * 65536}).decode()


class _Flooding:
    """A healthy upstream (it answers pings) whose first session sends events as fast as the
    router takes them; `gone` is set when that session's connection ended."""

    def __init__(self) -> None:
        self.sessions = 0
        self.gone = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()  # autoping: answered while it reads
        await socket.prepare(request)
        await socket.send_str(orjson.dumps({"type": "session.created", "session": {}}).decode())
        self.sessions += 1
        if self.sessions > 1:
            async for _ in socket:
                pass
            return socket
        flood = asyncio.create_task(self._flood(socket))
        async for _ in socket:  # reads (and answers pings) while the flood is held
            pass
        flood.cancel()
        self.gone.set()
        return socket

    @staticmethod
    async def _flood(socket: web.WebSocketResponse) -> None:
        while not socket.closed:
            await socket.send_str(_CHUNK)


async def test_a_caller_that_stops_reading_ends_its_session_without_cooling_the_upstream(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    upstream = _Flooding()
    app = web.Application()
    app.router.add_get("/v1/realtime", upstream.handle)
    async with serve_app(app) as url:
        config = realtime_config(fake, streams={"realtime_ping_s": 0.1})
        config["providers"]["alpha"]["base_url"] = f"{url}/v1"
        router = await start_router(config)
        async with RouterClient(router.server.address) as grpc_client:
            session, route = await open_session(grpc_client)
            assert route.deployment == "alpha/rt-a"
            # The caller reads nothing until the router dropped the upstream connection.
            await asyncio.wait_for(upstream.gone.wait(), timeout=30)
            messages = [message async for message in session]
            again, route = await open_session(grpc_client)
            await again.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            assert [m async for m in again][-1].close.code == 1000
        assert await router.leases_held() == 0
    assert route.deployment == "alpha/rt-a"  # not cooled: the stall was the caller's
    error = orjson.loads(messages[-2].event_json)
    assert error["type"] == "error" and error["error"]["code"] == "events_not_read"
    assert messages[-1].close.code == 1008
