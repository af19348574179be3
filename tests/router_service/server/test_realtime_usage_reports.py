"""A Realtime upstream's `response.done` usage that is negative, no number or past any int64 (a
buggy compatible server) counts none of that response, as a chat's negative report refunds
nothing: it took back the tokens the session's earlier responses had counted in the client's
tpm (and budgets), and an unreadable count ended the session with INTERNAL."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp import WSMsgType, web

from clients import RouterClient
from tests.conftest import StartRouter, base_config
from tests.helpers import serve_app
from tests.router_service.auth.helpers import client
from tests.router_service.server.test_realtime_rpc import KEY, ask_then_close, event, open_session

pytestmark = pytest.mark.timeout(30)

GOOD = {"input_tokens": 60, "output_tokens": 40, "total_tokens": 100}


def upstream(reports: list[dict[str, Any]], closes: asyncio.Queue[int | None]) -> web.Application:
    """A realtime upstream whose `response.done` events carry `reports`' usages in turn; each
    session's close code as the upstream saw it goes to `closes` (1000: the router's close)."""

    async def serve(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(orjson.dumps({"type": "session.created", "session": {}}).decode())
        async for message in socket:
            if message.type is WSMsgType.TEXT and '"response.create"' in message.data:
                done = {"id": "resp_1", "status": "completed", "usage": reports.pop(0)}
                await socket.send_str(
                    orjson.dumps({"type": "response.done", "response": done}).decode()
                )
        closes.put_nowait(socket.close_code)
        return socket

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


@pytest.mark.parametrize(
    "bad",
    [
        {"input_tokens": -100, "output_tokens": 0, "total_tokens": -100},
        {"input_tokens": "many", "output_tokens": 1},
        {"input_tokens": [1], "output_tokens": 1},
        {"input_tokens": 1e30, "output_tokens": 1},
    ],
)
async def test_a_bad_usage_report_takes_nothing_back(
    start_router: StartRouter, bad: dict[str, Any]
) -> None:
    closes: asyncio.Queue[int | None] = asyncio.Queue()
    async with serve_app(upstream([GOOD, bad], closes)) as url:
        config = base_config(url, auth={"clients": [client("svc", KEY, tpm=1000)]})
        config["models"]["voice"] = {
            "deployments": [{"provider": "alpha", "model": "rt-a", "realtime": True}]
        }
        router = await start_router(config)
        async with RouterClient(router.server.address) as grpc_client:
            session, _ = await open_session(grpc_client)
            await session.send(event("response.create"))
            async for message in session:  # the first answer, well reported
                if '"response.done"' in message.event_json:
                    break
            await ask_then_close(session)  # the second, badly
            again, route = await open_session(grpc_client)
            await again.aclose()  # the caller leaves: the router closes the upstream socket
            # Both sessions' closes seen before the upstream stops: its shutdown (aiohttp's
            # pre_shutdown) drops what arrives after, the router's close frame too, whose close
            # then waited out aiohttp's 10 s close timeout. 30 s: a hang guard, not a measure.
            seen = [await asyncio.wait_for(closes.get(), 30) for _ in range(2)]
    assert seen == [1000, 1000]  # each closed by the router's close frame, not dropped
    assert route.rate_limit.remaining_tokens == 1000 - 100  # the good report's, kept
