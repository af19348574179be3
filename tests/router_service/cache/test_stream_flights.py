"""Identical streaming misses on one replica share one upstream stream (cache/_stream_flights.py):
over gRPC with the fake upstream held until the followers joined, and the flight's buffer
driven directly (replay from the first event, a slow follower cut loose, the pump stopped when
everyone left)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.cache._stream_flights import FellBehind, StreamFlight, StreamFlights
from router_service.clock import SYSTEM_CLOCK
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat_stream
from tests.router_service.cache.test_response_cache import streamed_text

HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS


@pytest.fixture
async def cached(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(base_config(fake.base_url, cache={"enabled": True}))


async def events(router: RouterHandle, request: pb.ChatStreamRequest) -> list[Any]:
    return [event async for event in router.stub.ChatStream(request)]


def statuses(stream: list[Any]) -> tuple[int, int]:
    """The cache status of the route event and of the summary's route."""
    (route,) = (e.route for e in stream if e.WhichOneof("event") == "route")
    (summary,) = (e.summary for e in stream if e.WhichOneof("event") == "summary")
    return route.cache, summary.route.cache


async def flying(router: RouterHandle, fake: FakeUpstream) -> StreamFlight:
    """The one stream flight under way, once its upstream call is held by the fake."""
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the leader's upstream call")
    (flight,) = router.runtime.cache.stream_flights._open.values()
    return flight


async def test_identical_streams_make_one_upstream_call(
    fake: FakeUpstream, cached: RouterHandle
) -> None:
    fake.state.hold()
    leader = asyncio.create_task(events(cached, chat_stream()))
    flight = await flying(cached, fake)
    batched = chat_stream()
    batched.batch_chunks = True  # a follower reading batches still gets every chunk
    followers = [asyncio.create_task(events(cached, r)) for r in (chat_stream(), batched)]
    await flight.wait_until(lambda f: f.followers == 2)
    fake.state.release()
    first, *rest = await asyncio.gather(leader, *followers)
    assert len(fake.state.calls()) == 1
    assert statuses(first) == (MISS, MISS)
    for stream in rest:
        assert statuses(stream) == (HIT, HIT)
        assert streamed_text(stream) == streamed_text(first) != ""
    assert [e.chunk for e in rest[0] if e.HasField("chunk")] == [
        e.chunk for e in first if e.HasField("chunk")
    ]
    assert cached.runtime.cache.stream_flights.open == 0
    assert statuses(await events(cached, chat_stream())) == (HIT, HIT)  # kept as well
    assert len(fake.state.calls()) == 1


async def test_a_leader_failing_before_its_first_chunk_lets_the_follower_ask(
    fake: FakeUpstream, cached: RouterHandle
) -> None:
    fake.state.set_scenario(Scenario(status=400, times=1))  # not retried: the leader's only
    fake.state.hold()
    leader = asyncio.create_task(events(cached, chat_stream()))
    flight = await flying(cached, fake)
    follower = asyncio.create_task(events(cached, chat_stream()))
    await flight.wait_until(lambda f: f.followers == 1)
    fake.state.release()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await leader
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stream = await follower  # asked upstream itself: its own whole answer
    assert statuses(stream) == (MISS, MISS) and streamed_text(stream) != ""
    assert len(fake.state.calls()) == 2


async def test_the_leaders_caller_leaving_does_not_end_the_followers_stream(
    fake: FakeUpstream, cached: RouterHandle
) -> None:
    fake.state.hold()
    leader = cached.stub.ChatStream(chat_stream())
    leading = asyncio.create_task(leader.read())
    flight = await flying(cached, fake)
    follower = asyncio.create_task(events(cached, chat_stream()))
    await flight.wait_until(lambda f: f.followers == 1)
    leader.cancel()
    await flight.wait_until(lambda f: not f.led)  # the router saw its caller leave
    fake.state.release()
    stream = await follower
    assert statuses(stream) == (HIT, HIT) and streamed_text(stream) != ""
    assert len(fake.state.calls()) == 1  # the leader's upstream call went on for it
    with pytest.raises(asyncio.CancelledError):
        await leading
    assert statuses(await events(cached, chat_stream())) == (HIT, HIT)  # and it was kept
    assert len(fake.state.calls()) == 1


def chunk(text: str) -> pb.ChatStreamResponse:
    event = pb.ChatStreamResponse()
    event.chunk.choices.add().delta.text = text
    return event


async def test_a_late_follower_reads_from_the_first_event_and_a_slow_one_is_cut() -> None:
    flight = StreamFlight(max_bytes=3 * chunk("a").ByteSize(), clock=SYSTEM_CLOCK)
    leader = flight.read(leader=True)
    slow = flight.read(leader=False)
    flight.push(chunk("a"))
    assert (await anext(slow)).chunk.choices[0].delta.text == "a"
    for text in "bc":
        flight.push(chunk(text))
    late = flight.read(leader=False)  # nothing dropped yet: it joins from the first
    assert [(await anext(late)).chunk.choices[0].delta.text for _ in range(3)] == ["a", "b", "c"]
    assert [(await anext(leader)).chunk.choices[0].delta.text for _ in range(3)] == ["a", "b", "c"]
    for text in "def":  # more than the bound behind: `slow` is cut, the others keep reading
        flight.push(chunk(text))
    assert not flight.joinable  # its first events are gone
    with pytest.raises(FellBehind):
        await anext(slow)
    flight.end()
    assert [e.chunk.choices[0].delta.text async for e in late] == ["d", "e", "f"]
    assert [e.chunk.choices[0].delta.text async for e in leader] == ["d", "e", "f"]


async def test_the_pump_stops_when_every_reader_left() -> None:
    flights = StreamFlights(SYSTEM_CLOCK)

    async def pump(flight: StreamFlight) -> None:
        flight.push(chunk("a"))
        await asyncio.Future()  # an upstream that never ends

    flight = flights.lead("name", 1_000, pump)
    assert flight is not None and flights.lead("name", 1_000, pump) is None
    reader = flight.read(leader=True)
    assert (await anext(reader)).chunk.choices[0].delta.text == "a"
    await reader.aclose()
    assert flight.pump is not None
    with pytest.raises(asyncio.CancelledError):
        await flight.pump
    assert flights.open == 0 and not flight.joinable


async def test_a_route_on_the_first_chunks_stays_its_callers_own(
    fake: FakeUpstream, cached: RouterHandle
) -> None:
    """A leader that asks for its route on its first chunks (`route_on_first_message`, as the
    edge does) gets it on its own message: the chunks its followers read from the flight carry
    no route of its (its standing, its MISS), and one that did not ask gets none there."""
    fake.state.set_scenario(Scenario(held_after_chunks=2))  # under way after its first chunks
    asked = chat_stream()
    asked.route_on_first_message = True
    leader = cached.stub.ChatStream(asked)
    first = await leader.read()
    assert first.first_route.cache == MISS and first.WhichOneof("event") in ("chunk", "chunks")
    flight = await flying(cached, fake)
    follower = asyncio.create_task(events(cached, chat_stream()))  # reads from the first event
    await flight.wait_until(lambda f: f.followers == 1)
    fake.state.release()
    stream = await follower
    assert statuses(stream) == (HIT, HIT) and streamed_text(stream) != ""
    assert not any(event.HasField("first_route") for event in stream)
    rest = []
    while (event := await leader.read()) is not grpc.aio.EOF:
        rest.append(event)
    assert rest[-1].WhichOneof("event") == "summary"
