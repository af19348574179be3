"""Leases return to zero on every path: success, upstream error, deadline, caller cancellation,
client disconnect; and the upstream connection is closed when the caller goes away."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc as pb_grpc
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.helpers import eventually


def request(text: str = "a b c") -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(
        model="chain", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)]
    )


async def no_leases(router: RouterHandle) -> None:
    async def zero() -> bool:
        return await router.leases_held() == 0

    await eventually(zero, what="all key leases released")


async def test_after_success(router: RouterHandle) -> None:
    await router.stub.Chat(pb.ChatRequest(params=request()))
    async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=request())):
        pass
    assert await router.leases_held() == 0


async def test_after_upstream_errors(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.server_error(500))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(pb.ChatRequest(params=request()))
    assert await router.leases_held() == 0


async def test_after_deadline(router: RouterHandle, fake: FakeUpstream) -> None:
    """The (real) deadline is long enough that the call reaches the stalled upstream before it
    however loaded the machine: it passes while the upstream is silent."""
    fake.state.set_scenario(Scenario(stall_before_first_byte=True))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=request()), timeout=2)

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    [record] = fake.state.records  # it reached the upstream, which the router then left
    await fake.state.wait_for(lambda: record.client_disconnected)
    await no_leases(router)


async def test_after_caller_cancels_a_stream(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(chunks=200, held_after_chunks=2))  # under way until cut
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=request()))
    async for event in call:
        if event.HasField("chunk"):
            break
    assert await router.leases_held() == 1

    call.cancel()

    await fake.state.wait_for(lambda: fake.state.records[-1].client_disconnected)
    await no_leases(router)
    assert fake.state.records[-1].chunks_sent < 200


async def test_after_client_disconnects(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(chunks=200, held_after_chunks=2))  # under way until cut
    channel = grpc.aio.insecure_channel(router.server.address)
    stub = pb_grpc.RouterServiceStub(channel)
    async for event in stub.ChatStream(pb.ChatStreamRequest(params=request())):
        if event.HasField("chunk"):
            break

    await channel.close()  # the whole client goes away, mid-stream

    await fake.state.wait_for(lambda: fake.state.records[-1].client_disconnected)
    await no_leases(router)


async def test_finished_streams_give_their_upstream_connection_back(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """A stream read to its end returns the connection to the pool: ten sequential streams
    ride on one TCP connection instead of opening ten."""
    for _ in range(10):
        async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=request())):
            pass
    peers = {r.peer for r in fake.state.records}
    assert len(fake.state.records) == 10
    assert len(peers) == 1
