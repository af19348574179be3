"""RouterService.Realtime over real gRPC: a `session.update` forcing a tool call while the
session has no tools is answered by the router with an `error` event (not sent upstream) and the
session goes on; the same update once the session has tools reaches the upstream."""

from __future__ import annotations

import orjson
import pytest

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.server.test_realtime_rpc import ASK, event, realtime_config

pytestmark = pytest.mark.timeout(30)

OPEN = pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice"))
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


async def test_a_forcing_update_without_tools_is_refused_and_later_events_flow(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(realtime_config(fake))
    async with RouterClient(router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(OPEN)
            assert (await anext(session)).WhichOneof("message") == "route"
            assert orjson.loads((await anext(session)).event_json)["type"] == "session.created"
            await session.send(
                event("session.update", event_id="u1", session={"tool_choice": "required"})
            )
            refused = orjson.loads((await anext(session)).event_json)
            await session.send(ASK)  # the session goes on
            added = orjson.loads((await anext(session)).event_json)
            await session.send(
                event("session.update", session={"tools": [TOOL], "tool_choice": "required"})
            )
            updated = orjson.loads((await anext(session)).event_json)
            await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            rest = [message.WhichOneof("message") async for message in session]
    assert refused["type"] == "error"
    assert refused["error"]["param"] == "session.tool_choice"
    assert refused["error"]["code"] == "invalid_value"
    assert refused["error"]["event_id"] == "u1"
    assert "'tool_choice' is only allowed when 'tools' are specified" in refused["error"]["message"]
    assert added["type"] == "conversation.item.added"
    assert updated["type"] == "session.updated"
    assert updated["session"]["tool_choice"] == "required"
    assert rest == ["close"]
    assert await router.leases_held() == 0


async def test_an_update_clearing_the_tools_of_a_forcing_session_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The session forces a call with tools; an update that names only `tools: []` would leave it
    # forcing a call with nothing to call, the state a forcing update without tools is refused for.
    router = await start_router(realtime_config(fake))
    async with RouterClient(router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(OPEN)
            assert (await anext(session)).WhichOneof("message") == "route"
            assert orjson.loads((await anext(session)).event_json)["type"] == "session.created"
            forcing = {"tools": [TOOL], "tool_choice": "required"}
            await session.send(event("session.update", session=forcing))
            assert orjson.loads((await anext(session)).event_json)["type"] == "session.updated"
            await session.send(event("session.update", event_id="u2", session={"tools": []}))
            refused = orjson.loads((await anext(session)).event_json)
            await session.send(event("session.update", session={"tool_choice": "auto"}))
            relaxed = orjson.loads((await anext(session)).event_json)
            await session.send(event("session.update", session={"tools": []}))  # now allowed
            cleared = orjson.loads((await anext(session)).event_json)
            await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            rest = [message.WhichOneof("message") async for message in session]
    assert refused["type"] == "error", refused
    assert refused["error"]["param"] == "session.tool_choice"
    assert refused["error"]["event_id"] == "u2"
    assert relaxed["type"] == "session.updated"
    assert relaxed["session"]["tools"] == [TOOL]  # the refused update changed nothing upstream
    assert cleared["type"] == "session.updated" and cleared["session"]["tools"] == []
    assert rest == ["close"]
    assert await router.leases_held() == 0
