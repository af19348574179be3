"""A Realtime caller's message after its `open` that is neither an event nor a close: one with
nothing set (what a Node caller's `{event: ...}` becomes, as @grpc/proto-loader drops a field
name it does not know, as it drops a misspelt enum name) or a second `open`. The router dropped
it without a word and the caller waited for an answer that never came; the session now ends as
for a message that is no valid one: an `error` event naming it, then close code 1008."""

from __future__ import annotations

import orjson
import pytest

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.server.test_realtime_rpc import ASK, realtime_config

pytestmark = pytest.mark.timeout(30)

OPEN = pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice"))
# The message sent, what the error says of it, and its `param` (the field to set instead, or the
# one set again), as every other refusal of a caller's field names it.
UNSET = {
    "nothing set": (pb.RealtimeRequest(), "none", "event_json"),
    "a second open": (OPEN, "`open` again", "open"),
}


@pytest.mark.parametrize(("sent", "said", "param"), UNSET.values(), ids=UNSET.keys())
async def test_a_message_that_is_no_event_ends_the_session_saying_so(
    fake: FakeUpstream,
    start_router: StartRouter,
    sent: pb.RealtimeRequest,
    said: str,
    param: str,
) -> None:
    router: RouterHandle = await start_router(realtime_config(fake))
    async with RouterClient(router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(OPEN)
            assert (await anext(session)).WhichOneof("message") == "route"
            created = orjson.loads((await anext(session)).event_json)
            assert created["type"] == "session.created"
            await session.send(sent)
            await session.send(ASK)  # never relayed: the session ended at the message before
            rest = [message async for message in session]
    assert [m.WhichOneof("message") for m in rest] == ["event_json", "close"]
    error = orjson.loads(rest[0].event_json)
    assert error["type"] == "error"
    assert (error["error"]["type"], error["error"]["code"]) == (
        "invalid_request_error",
        "invalid_message",
    )
    assert "`event_json` or `close`" in error["error"]["message"]
    assert said in error["error"]["message"]
    assert error["error"]["param"] == param
    assert rest[1].close.code == 1008
    assert await router.leases_held() == 0
