"""A Realtime session's span (its call's SERVER span, a child of the caller's context as every
call's): opened with the session, ended when it closes, with the usage its `response.done`
events reported and the deployment that served it."""

from __future__ import annotations

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.server.test_realtime_rpc import ASK, event, realtime_config
from tests.router_service.telemetry.spans import attrs, ended

REALTIME = "switchboard.v1.RouterService/Realtime"


async def two_responses(router: RouterHandle) -> None:
    """A session that asks for two responses, then closes."""
    async with RouterClient(router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            for request in (ASK, event("response.create"), event("response.create")):
                await session.send(request)
            done = 0
            async for message in session:
                done += '"response.done"' in message.event_json
                if done == 2:
                    break
            await session.done_writing()
            assert [m.WhichOneof("message") async for m in session] == ["close"]


async def test_a_session_is_one_span_with_its_usage(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    await two_responses(await start_router(realtime_config(fake)))
    trace = await ended(captured, REALTIME)
    got = attrs(trace.one(REALTIME))
    assert got["gen_ai.operation.name"] == "realtime"
    assert got["gen_ai.provider.name"] == "openai"
    assert (got["gen_ai.usage.input_tokens"], got["gen_ai.usage.output_tokens"]) == (20, 6)


async def test_a_sessions_output_tokens_are_counted_as_its_input_tokens_are(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """What the client used (`switchboard.client.tokens`) and the token histogram say the
    session's output tokens too, as its span does: not a chat's alone."""
    await two_responses(await start_router(realtime_config(fake)))
    await ended(captured, REALTIME)
    used = captured.points("switchboard.client.tokens")
    assert {a["gen_ai.token.type"]: p.value for a, p in used} == {"input": 20, "output": 6}
    usage = captured.points("gen_ai.client.token.usage")
    assert {a["gen_ai.token.type"]: p.sum for a, p in usage} == {"input": 20, "output": 6}
