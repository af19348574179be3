"""RouterService.Realtime over real gRPC with the Python client: a real router on loopback, the
fake upstream's realtime socket. A refused handshake fails over to the next key before anything
is relayed; events go both ways; the session's end is told (a close, or an error event then a
close when the upstream dropped it); deployments not marked realtime are passed over."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config

pytestmark = pytest.mark.timeout(30)


def realtime_config(fake: FakeUpstream, **sections: Any) -> dict[str, Any]:
    config = base_config(fake.base_url, **sections)
    config["models"]["voice"] = {
        "deployments": [
            {"provider": "alpha", "model": "rt-a", "realtime": True},
            {"provider": "beta", "model": "rt-b", "realtime": True},
        ]
    }
    return config


@pytest.fixture
async def rt_router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(realtime_config(fake))


def event(kind: str, **fields: Any) -> pb.RealtimeRequest:
    return pb.RealtimeRequest(event_json=orjson.dumps({"type": kind, **fields}).decode())


ASK = event(
    "conversation.item.create",
    item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
)


async def test_a_refused_handshake_fails_over_and_events_go_both_ways(
    rt_router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), key="sk-alpha-1")
    async with RouterClient(rt_router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            route = await anext(session)
            assert route.route.deployment == "alpha/rt-a"
            outcomes = [a.outcome for a in route.route.attempts]
            assert len(outcomes) == 2 and outcomes[0] != outcomes[1]
            await session.send(ASK)
            await session.send(event("response.create"))
            kinds = []
            async for message in session:
                data = orjson.loads(message.event_json)
                kinds.append(data["type"])
                if data["type"] == "response.done":
                    break
            await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            rest = [message async for message in session]
    assert kinds == [
        "session.created",
        "conversation.item.added",
        "response.created",
        *["response.output_text.delta"] * 3,  # "You said: hi"
        "response.done",
    ]
    assert [m.WhichOneof("message") for m in rest] == ["close"]
    assert rest[0].close.code == 1000
    calls = await fake.state.wait_for_count(2, path="/v1/realtime")
    assert [(c.key, c.status) for c in calls] == [("sk-alpha-1", 429), ("sk-alpha-2", 101)]
    assert calls[1].outcome == "ok"  # the router closed the upstream socket
    assert await rt_router.leases_held() == 0


async def test_a_dropped_upstream_ends_the_session_with_an_error_event(
    rt_router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(reset_after_chunks=2), key="sk-alpha-1")
    async with RouterClient(rt_router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            await session.send(ASK)
            messages = [message async for message in session]
    kinds = [m.WhichOneof("message") for m in messages]
    assert kinds == ["route", "event_json", "event_json", "event_json", "close"]
    error = orjson.loads(messages[-2].event_json)
    assert error["type"] == "error" and error["error"]["code"] == "upstream_error"
    assert messages[-1].close.code == 1011
    assert await rt_router.leases_held() == 0


async def test_deployments_not_marked_realtime_are_passed_over(rt_router: RouterHandle) -> None:
    async with RouterClient(rt_router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="chain")))
            with pytest.raises(RouterError) as info:
                await anext(session)
    assert info.value.grpc_code is grpc.StatusCode.INVALID_ARGUMENT
    assert "realtime" in str(info.value)
