"""RouterService.Realtime over real gRPC: a `session.update` forcing a tool call while the
session has no tools is answered by the router with an `error` event (not sent upstream) and the
session goes on; the same update once the session has tools reaches the upstream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients import RouterClient, RouterRealtime
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.server.test_realtime_rpc import ASK, event, realtime_config

pytestmark = pytest.mark.timeout(30)

OPEN = pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice"))
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


async def _next_event(session: RouterRealtime) -> Any:
    """The session's next message, an upstream (or the router's) event, parsed."""
    return orjson.loads((await anext(session)).event_json)


async def _opened(session: RouterRealtime) -> None:
    """Open the session: its route, then the upstream's `session.created`."""
    await session.send(OPEN)
    assert (await anext(session)).WhichOneof("message") == "route"
    assert (await _next_event(session))["type"] == "session.created"


async def _closed(session: RouterRealtime) -> list[str | None]:
    """Close the session: what it said after (its kinds of message)."""
    await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
    return [message.WhichOneof("message") async for message in session]


async def test_a_forcing_update_without_tools_is_refused_and_later_events_flow(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(realtime_config(fake))
    async with RouterClient(router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await _opened(session)
            await session.send(
                event("session.update", event_id="u1", session={"tool_choice": "required"})
            )
            refused = await _next_event(session)
            await session.send(ASK)  # the session goes on
            added = await _next_event(session)
            await session.send(
                event("session.update", session={"tools": [TOOL], "tool_choice": "required"})
            )
            updated = await _next_event(session)
            rest = await _closed(session)
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
            await _opened(session)
            forcing = {"tools": [TOOL], "tool_choice": "required"}
            await session.send(event("session.update", session=forcing))
            assert (await _next_event(session))["type"] == "session.updated"
            await session.send(event("session.update", event_id="u2", session={"tools": []}))
            refused = await _next_event(session)
            await session.send(event("session.update", session={"tool_choice": "auto"}))
            relaxed = await _next_event(session)
            await session.send(event("session.update", session={"tools": []}))  # now allowed
            cleared = await _next_event(session)
            rest = await _closed(session)
    assert refused["type"] == "error", refused
    assert refused["error"]["param"] == "session.tool_choice"
    assert refused["error"]["event_id"] == "u2"
    assert relaxed["type"] == "session.updated"
    assert relaxed["session"]["tools"] == [TOOL]  # the refused update changed nothing upstream
    assert cleared["type"] == "session.updated" and cleared["session"]["tools"] == []
    assert rest == ["close"]
    assert await router.leases_held() == 0
