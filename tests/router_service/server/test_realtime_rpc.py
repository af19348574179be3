"""RouterService.Realtime over real gRPC with the Python client: a real router on loopback, the
fake upstream's realtime socket. A refused handshake fails over to the next key before anything
is relayed; events go both ways; the session's end is told (a close, or an error event then a
close when the upstream dropped it); deployments not marked realtime are passed over."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import orjson
import pytest

from clients import LocalChannel, RouterClient, RouterError, RouterRealtime, SyncRouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import advance_until_done, eventually, refusals_on_another_loop
from tests.router_service.auth.helpers import bearer, client

pytestmark = pytest.mark.timeout(30)

KEY = "sk-realtime-caller"


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


@pytest.mark.parametrize("event_json", ["{not json", "[1]", "[" * 10_000 + "]" * 10_000])
async def test_an_event_that_is_not_a_json_object_is_answered_with_an_error_event(
    rt_router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, event_json: str
) -> None:
    """The router relays such an event as it is, for the upstream to refuse with an `error`
    event as OpenAI's does; the fake upstream failed with a traceback and dropped the socket, so
    a session was ended that OpenAI's keeps open."""
    async with RouterClient(rt_router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            await anext(session)  # the route
            created = orjson.loads((await anext(session)).event_json)
            assert created["type"] == "session.created"
            await session.send(pb.RealtimeRequest(event_json=event_json))
            refused = orjson.loads((await anext(session)).event_json)
            await session.send(ASK)
            added = orjson.loads((await anext(session)).event_json)
            await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            rest = [message async for message in session]
    assert (refused["type"], refused["error"]["type"]) == ("error", "invalid_request_error")
    assert added["type"] == "conversation.item.added"  # the session went on
    assert [m.WhichOneof("message") for m in rest] == ["close"]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert await rt_router.leases_held() == 0


async def test_a_realtime_sessions_send_and_done_writing_on_another_loop_say_so(
    rt_router: RouterHandle,
) -> None:
    # Its reads and close said so (CallStream), its writes met grpc's own errors of a call
    # attached to another loop.
    async with RouterClient(rt_router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            assert (await anext(session)).route.deployment == "alpha/rt-a"
            refusals = await refusals_on_another_loop(
                lambda: session.send(ASK), session.done_writing
            )
            assert all("another event loop" in refusal for refusal in refusals), refusals
            await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            rest = [message async for message in session]  # it went on, on its loop
    assert [m.WhichOneof("message") for m in rest][-1] == "close"
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


async def open_session(client: RouterClient, model: str = "voice") -> tuple[RouterRealtime, Any]:
    """A session with no deadline, as the edge opens them: the tests that open it move the
    router's clock by hours, past any deadline (which ends a session: test_realtime_deadline)."""
    session = client.realtime(timeout=None, metadata=bearer(KEY))
    await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model=model)))
    return session, (await anext(session)).route


async def refused_a_second(client: RouterClient, clock: ManualClock | None = None) -> None:
    """A second session of a client allowed one stream is refused: the open one holds it (on a
    router's ManualClock `clock`, once it is moved past the wait for one of its streams to end)."""
    opening = asyncio.ensure_future(open_session(client))
    if clock is not None:
        await advance_until_done(clock, 0.5, opening, what="the second session refused")
    with pytest.raises(RouterError) as busy:
        await opening
    assert busy.value.grpc_code is grpc.StatusCode.RESOURCE_EXHAUSTED


async def ask_then_close(session: RouterRealtime) -> None:
    """One answer, up to its `response.done`; then the caller's close, which the router ends
    the session on."""
    await session.send(ASK)
    await session.send(event("response.create"))
    async for message in session:
        if '"response.done"' in message.event_json:
            break
    await session.done_writing()
    assert [m.WhichOneof("message") async for m in session] == ["close"]


async def test_a_session_holds_a_stream_and_its_usage_counts_in_tpm(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    caller = client("svc", KEY, tpm=1000, max_concurrent_streams=1)
    router = await start_router(realtime_config(fake, auth={"clients": [caller]}))
    async with RouterClient(router.server.address) as grpc_client:
        first, route = await open_session(grpc_client)
        assert route.rate_limit.remaining_tokens == 1000  # a session's start costs no estimate
        await refused_a_second(grpc_client)
        await ask_then_close(first)
        again, route = await open_session(grpc_client)
        await again.aclose()
    assert route.rate_limit.remaining_tokens == 1000 - 13  # "You said: hi": 3 + 10 tokens


async def test_a_client_whose_answers_are_screened_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    rule = {"name": "withheld", "patterns": ["x"], "action": "block", "apply_to": ["response"]}
    router = await start_router(realtime_config(fake, guardrails=[rule]))
    async with RouterClient(router.server.address) as grpc_client:
        with pytest.raises(RouterError) as info:
            await open_session(grpc_client)
    assert info.value.grpc_code is grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details.openai_code == "realtime_not_screened"
    assert fake.state.count(path="/v1/realtime") == 0


async def test_a_caller_that_goes_away_closes_the_upstream_socket(
    rt_router: RouterHandle, fake: FakeUpstream
) -> None:
    async with RouterClient(rt_router.server.address) as grpc_client:
        session = grpc_client.realtime(timeout=10)
        await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
        assert (await anext(session)).WhichOneof("message") == "route"
        assert "session.created" in (await anext(session)).event_json
        await session.aclose()  # cancels the call: no close message
        (call,) = await fake.state.wait_for_count(1, path="/v1/realtime")

    async def ended() -> bool:
        relays = [t for t in asyncio.all_tasks() if t.get_name() == "switchboard-realtime-in"]
        return not relays and await rt_router.leases_held() == 0

    await eventually(ended, what="the session's relay task and key lease gone")
    assert call.key == "sk-alpha-1"


async def test_the_sync_client_speaks_it_too(rt_router: RouterHandle) -> None:
    answered = threading.Event()

    def requests() -> Iterator[pb.RealtimeRequest]:
        yield pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice"))
        yield event("response.create")
        answered.wait(10)  # the caller closes once it read the answer
        yield pb.RealtimeRequest(close=pb.RealtimeClose(code=1000))

    def session() -> list[str]:
        kinds: list[str] = []
        with SyncRouterClient(rt_router.server.address) as sync:
            for message in sync.realtime(requests(), timeout=10):
                kind = str(message.WhichOneof("message"))
                if kind == "event_json":
                    kind = orjson.loads(message.event_json)["type"]
                    if kind == "response.done":
                        answered.set()
                kinds.append(kind)
        return kinds

    kinds = await asyncio.to_thread(session)
    assert kinds[:3] == ["route", "session.created", "response.created"]
    assert kinds[-2:] == ["response.done", "close"]


async def test_sending_on_a_session_the_router_ended_is_a_router_error(
    rt_router: RouterHandle,
) -> None:
    # The edge relays a caller's events (audio appends, steadily) while the router may end the
    # session: such a send must be the one error type its relay catches.
    async with RouterClient(rt_router.server.address) as grpc_client:
        async with grpc_client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
            kinds = [message.WhichOneof("message") async for message in session]
            assert kinds == ["route", "event_json", "close"]
            with pytest.raises(RouterError) as ended:
                await session.send(event("response.create"))
            assert ended.value.grpc_code is grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("in_process", [False, True], ids=["wire", "in-process"])
async def test_an_event_over_the_clients_message_limit_is_said_too_large(
    rt_router: RouterHandle, in_process: bool
) -> None:
    # Over the wire grpc ended the session INTERNAL "Internal error from Core" (a 500 naming
    # nothing); a unary call over it is RESOURCE_EXHAUSTED "Sent message larger than max".
    channel = LocalChannel(rt_router.server.in_process) if in_process else None
    async with RouterClient(
        rt_router.server.address, channel=channel, max_message_bytes=64 * 1024
    ) as grpc_client:
        async with grpc_client.realtime(timeout=10) as session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            assert (await anext(session)).WhichOneof("message") == "route"
            audio = event("input_audio_buffer.append", audio="A" * 70_000)
            with pytest.raises(RouterError) as refused:
                await session.send(audio)
            with pytest.raises(RouterError) as read:  # the call it ended says so too, not
                await anext(session)  # grpc's INTERNAL "Internal error from Core"
    assert read.value.details == refused.value.details
    details = refused.value.details
    assert (details.code, details.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "MESSAGE_TOO_LARGE",
    )
    assert refused.value.http_status == 413
    assert details.message == f"CLIENT: Sent message larger than max ({audio.ByteSize()} vs. 65536)"


async def test_a_session_ending_serves_a_session_waiting_for_its_slot(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A second session, refused the slot the first holds, waits for one of its client's
    streams to end: the first's end (ended by the Realtime handler, not a stream's) wakes it,
    served with the router's clock unmoved."""
    caller = client("svc", KEY, max_concurrent_streams=1)
    clock = ManualClock()
    router = await start_router(realtime_config(fake, auth={"clients": [caller]}), clock=clock)
    async with RouterClient(router.server.address) as grpc_client:
        first, _ = await open_session(grpc_client)
        since = clock.monotonic()
        opening = asyncio.ensure_future(open_session(grpc_client))

        async def waiting() -> bool:  # its wait for a slot: a window open on the router's clock
            return any(w.when() == since + 0.5 for w in clock.windows)

        await eventually(waiting, what="the second session waiting for a slot")
        await ask_then_close(first)

        async def served() -> bool:
            return opening.done()

        await eventually(served, what="the second session opened, the clock unmoved")
        second, route = await opening
        assert route.deployment
        await second.aclose()


async def test_the_sync_clients_event_over_its_message_limit_is_said_too_large(
    rt_router: RouterHandle,
) -> None:
    # The blocking client's request iterator yielded an event over `max_message_bytes`: grpc
    # ended the session INTERNAL "Internal error from Core" (a 500 naming nothing), where the
    # async client's `send` says RESOURCE_EXHAUSTED MESSAGE_TOO_LARGE.
    audio = event("input_audio_buffer.append", audio="A" * 70_000)

    def requests() -> Iterator[pb.RealtimeRequest]:
        yield pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice"))
        yield audio

    def session() -> RouterError:
        with SyncRouterClient(rt_router.server.address, max_message_bytes=64 * 1024) as sync:
            with pytest.raises(RouterError) as refused:
                for _ in sync.realtime(requests(), timeout=10):
                    pass
        return refused.value

    refused = await asyncio.to_thread(session)
    assert (refused.details.code, refused.details.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "MESSAGE_TOO_LARGE",
    )
    assert refused.http_status == 413
    assert refused.details.message == (
        f"CLIENT: Sent message larger than max ({audio.ByteSize()} vs. 65536)"
    )
