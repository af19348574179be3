"""A call that may not be sent twice, made while no connection is up (a lone router restarting),
waits for one, bounded (clients/_ready.py), then is sent once: against real grpc.aio servers on
loopback."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest

from clients import RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import media_pb2, router_service_pb2, router_service_pb2_grpc
from tests.clients.fake_router import SERVER_OPTIONS, FakeRouter, chat_request
from tests.helpers import eventually, free_port, serve_grpc

pytestmark = pytest.mark.timeout(60)

# The channel tries a refused address again after 0.1 s rather than ~1 s (a quicker test).
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
]
# A wait for a connection no test can reach the end of (the router back is met however busy the
# machine; a wait that ends must end otherwise), and one that ends at once.
NEVER_S = 3600.0
AT_ONCE_S = 0.01


async def _refused(client: RouterClient) -> None:
    channel: grpc.aio.Channel = client._channel  # the client's own, to see it fail first

    async def refused() -> bool:
        state = channel.get_state(try_to_connect=True)  # connecting, if nothing did yet
        return bool(state is grpc.ChannelConnectivity.TRANSIENT_FAILURE)

    await eventually(refused, what="the first connection refused")


async def test_a_chat_made_while_the_router_restarts_is_sent_once_it_is_back() -> None:
    port = free_port()
    async with RouterClient(
        f"127.0.0.1:{port}", options=_FAST_RECONNECT, ready_wait_s=NEVER_S
    ) as client:
        call = asyncio.ensure_future(client.chat(chat_request("m"), timeout=30))
        await _refused(client)
        assert not call.done()  # waiting, not failed: no router can have seen it
        back = FakeRouter("back")
        servicer = (router_service_pb2_grpc.add_RouterServiceServicer_to_server, back)
        async with serve_grpc(servicer, options=SERVER_OPTIONS, port=port):
            answer = await call
    assert answer.completion.id == "back" and back.calls == 1


async def test_a_chat_to_a_router_that_never_comes_back_is_unavailable_after_the_bound() -> None:
    async with RouterClient(f"127.0.0.1:{free_port()}", ready_wait_s=AT_ONCE_S) as client:
        await _refused(client)  # no router: nothing but the bound ends the wait
        with pytest.raises(RouterError) as refused:
            async with asyncio.timeout(30):  # hang guard: no deadline, still bounded
                await client.chat(chat_request("m"), timeout=None)
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not refused.value.details.maybe_run  # never sent: safe to send again


async def test_the_wait_ends_at_the_calls_own_deadline() -> None:
    async with RouterClient(f"127.0.0.1:{free_port()}", ready_wait_s=NEVER_S) as client:
        await _refused(client)
        with pytest.raises(RouterError) as late:
            async with asyncio.timeout(30):  # hang guard: the bound is out of reach
                await client.chat(chat_request("m"), timeout=0.5)
    # Sent once its deadline is all but spent: grpc fails it as the channel is (its cause said),
    # or, on a loaded machine, as its deadline passed first (grpc's race, not ours). Either way
    # the wait ended at the call's deadline: one that waited out the bound trips the hang guard.
    assert late.value.grpc_code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


async def test_a_stream_made_while_the_router_restarts_starts_once_it_is_back() -> None:
    port = free_port()
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    async with RouterClient(
        f"127.0.0.1:{port}", options=_FAST_RECONNECT, ready_wait_s=NEVER_S
    ) as client:
        await _refused(client)
        stream = client.chat_stream(request, timeout=30)
        first = asyncio.ensure_future(anext(stream))
        back = FakeRouter("back")
        servicer = (router_service_pb2_grpc.add_RouterServiceServicer_to_server, back)
        async with serve_grpc(servicer, options=SERVER_OPTIONS, port=port), stream:
            chunks = [await first, *[chunk async for chunk in stream]]
    assert chunks and back.calls == 1


async def test_a_stream_closed_while_it_waits_sends_nothing() -> None:
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    async with RouterClient(f"127.0.0.1:{free_port()}") as client:
        await _refused(client)
        stream = client.chat_stream(request, timeout=None)
        first = asyncio.ensure_future(anext(stream))
        await eventually(lambda: _true(stream._reading), what="the first read waiting")
        assert stream.interrupt()  # a read was waiting: it ends by itself, at once
        with pytest.raises(StopAsyncIteration):
            await first
    assert stream._call is None  # never started: no router saw it


async def _true(value: bool) -> bool:
    return value


async def test_closing_the_client_under_calls_waiting_for_a_connection_cancels_them() -> None:
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    client = RouterClient(f"127.0.0.1:{free_port()}")
    unary = asyncio.ensure_future(client.chat(chat_request("m"), timeout=None))
    stream = client.chat_stream(request, timeout=None)
    first = asyncio.ensure_future(anext(stream))
    await _refused(client)
    await eventually(lambda: _true(stream._reading), what="the first read waiting")
    await client.aclose()
    for waiting in (unary, first):
        with pytest.raises(RouterError) as ended:  # not grpc's "Channel is closed" misuse
            await waiting
        assert ended.value.grpc_code is grpc.StatusCode.CANCELLED


async def test_a_call_waiting_when_the_credentials_rotate_is_not_cancelled() -> None:
    # Its channel stays open for its calls (`use_credentials`): the call is sent there now,
    # failing as one on a channel not up does (UNAVAILABLE: never sent, the caller may retry).
    async with RouterClient(f"127.0.0.1:{free_port()}") as client:
        waiting = asyncio.ensure_future(client.chat(chat_request("m"), timeout=None))
        await _refused(client)
        client.use_credentials(grpc.ssl_channel_credentials(), drain_s=0)
        with pytest.raises(RouterError) as refused:
            await waiting
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not refused.value.details.maybe_run


async def test_closing_the_client_right_after_a_rotation_cancels_the_calls_waiting() -> None:
    # Woken by the rotation, they find the client closed: CANCELLED, as a call waiting for a
    # connection when its client closes (not a RuntimeError, nor grpc's closed-channel misuse).
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    client = RouterClient(f"127.0.0.1:{free_port()}")
    unary = asyncio.ensure_future(client.chat(chat_request("m"), timeout=None))
    stream = client.media_stream(
        router_service_pb2.MediaStreamRequest(params=media_pb2.MediaParams(model="m")), timeout=None
    )
    first = asyncio.ensure_future(anext(stream))
    chat_stream = client.chat_stream(request, timeout=None)
    chat_first = asyncio.ensure_future(anext(chat_stream))
    await _refused(client)
    await eventually(lambda: _true(stream._reading and chat_stream._reading), what="reads")
    client.use_credentials(grpc.ssl_channel_credentials(), drain_s=0)
    await client.aclose()
    for waiting in (unary, first, chat_first):
        with pytest.raises(RouterError) as ended:
            await waiting
        assert ended.value.grpc_code is grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("client", [RouterClient, SyncRouterClient])
@pytest.mark.parametrize("bound", [-1.0, math.nan, math.inf])
def test_a_wait_for_a_connection_that_no_bound_ends_is_refused(
    client: type[RouterClient | SyncRouterClient], bound: float
) -> None:
    with pytest.raises(ValueError, match="ready_wait_s must be a finite number >= 0"):
        client("127.0.0.1:1", ready_wait_s=bound)
