"""The blocking client waits for a connection as the async one does (clients/_ready.py
`SyncReadyGate`): a call that may not be sent twice, made while no connection is up, blocks its
thread (bounded) until one is, then is sent once; and one whose connection dropped after the router
took it says so (`maybe_run`). Real grpc.aio servers on loopback, the client in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest

from clients import RouterError, SyncRouterClient
from clients.switchboard.v1 import media_pb2, router_service_pb2, router_service_pb2_grpc
from tests.clients.fake_router import SERVER_OPTIONS, chat_request
from tests.clients.test_ready_streams import RealtimeRouter
from tests.clients.test_ready_wait import _FAST_RECONNECT, AT_ONCE_S, NEVER_S
from tests.clients.test_retries import HangsFirst, cut_proxy, serving
from tests.helpers import eventually, free_port, serve_grpc

pytestmark = pytest.mark.timeout(60)

SyncCall = Callable[[SyncRouterClient], object]


def _chat(client: SyncRouterClient) -> object:
    return client.chat(chat_request("m"), timeout=30).completion.id


def _chat_stream(client: SyncRouterClient) -> object:
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    with client.chat_stream(request, timeout=30) as stream:
        return [message.WhichOneof("event") for message in stream]


def _media_stream(client: SyncRouterClient) -> object:
    request = router_service_pb2.MediaStreamRequest(params=media_pb2.MediaParams(model="m"))
    with client.media_stream(request, timeout=30) as stream:
        return [message.WhichOneof("event") for message in stream]


def _realtime(client: SyncRouterClient) -> object:
    opened = router_service_pb2.RealtimeRequest(open=router_service_pb2.RealtimeOpen())
    close = router_service_pb2.RealtimeRequest(close=router_service_pb2.RealtimeClose())
    with client.realtime(iter([opened, close]), timeout=30) as session:
        return [message.WhichOneof("message") for message in session]


async def _refused(client: SyncRouterClient) -> None:
    async def refused() -> bool:
        assert client._gate is not None
        transient_failure = 3  # gRPC Core's number (the state the gate reads)
        return client._gate._state(True) == transient_failure  # connecting, if nothing did yet

    await eventually(refused, what="the first connection refused")


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (_chat, "back"),
        (_chat_stream, ["chunk", "chunk", "summary"]),
        (_media_stream, ["chunk", "summary"]),
        (_realtime, ["event_json", "close"]),
    ],
)
async def test_a_call_made_while_the_router_restarts_is_sent_once_it_is_back(
    call: SyncCall, expected: object
) -> None:
    port = free_port()
    # grpc's own reconnect backoff (~1 s): the channel stays refused while the call is made.
    with SyncRouterClient(f"127.0.0.1:{port}", ready_wait_s=NEVER_S) as client:
        await _refused(client)
        pending = asyncio.ensure_future(asyncio.to_thread(call, client))
        back = RealtimeRouter("back")
        servicer = (router_service_pb2_grpc.add_RouterServiceServicer_to_server, back)
        async with serve_grpc(servicer, options=SERVER_OPTIONS, port=port):
            answer = await pending
    assert answer == expected and back.calls == 1


async def test_a_chat_to_a_router_that_never_comes_back_is_unavailable_after_the_bound() -> None:
    with SyncRouterClient(f"127.0.0.1:{free_port()}", ready_wait_s=AT_ONCE_S) as client:
        await _refused(client)  # no router: nothing but the bound ends the wait
        with pytest.raises(RouterError) as refused:
            async with asyncio.timeout(30):  # hang guard: no deadline, still bounded
                await asyncio.to_thread(client.chat, chat_request("m"), timeout=None)
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not refused.value.details.maybe_run  # never sent: safe to send again


@pytest.mark.parametrize("call", [_chat, _chat_stream])
async def test_a_call_the_router_took_says_it_may_have_run_when_its_connection_drops(
    call: SyncCall,
) -> None:
    router = HangsFirst("r")
    async with serving(router) as target, cut_proxy(target) as (proxy, via):
        with SyncRouterClient(via) as client:
            pending = asyncio.ensure_future(asyncio.to_thread(call, client))
            async with asyncio.timeout(10):
                await router.started.wait()
            proxy.cut()
            with pytest.raises(RouterError) as dropped:
                await pending
    assert dropped.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert dropped.value.details.maybe_run  # the edge tells an SDK not to retry it
    assert router.calls == 1


async def test_closing_the_client_under_a_call_waiting_for_a_connection_cancels_it() -> None:
    client = SyncRouterClient(f"127.0.0.1:{free_port()}", ready_wait_s=NEVER_S)
    client._stub("router")  # open
    await _refused(client)
    waiting = asyncio.ensure_future(asyncio.to_thread(client.chat, chat_request("m"), timeout=None))

    async def blocked() -> bool:
        return bool(client._gate and client._gate.waiting)

    await eventually(blocked, what="the call waiting for a connection")
    with pytest.raises(RouterError) as ended:
        async with asyncio.timeout(30):  # hang guard: the bound is out of reach
            await asyncio.to_thread(client.close)  # it ends with the client, not at the bound
            await waiting
    assert ended.value.grpc_code is grpc.StatusCode.CANCELLED


async def _waiting(client: SyncRouterClient, call: SyncCall) -> asyncio.Future[object]:
    """`call` made in a thread of its own, once it blocks waiting for a connection."""
    await _refused(client)
    pending = asyncio.ensure_future(asyncio.to_thread(call, client))

    async def blocked() -> bool:
        return bool(client._gate and client._gate.waiting)

    await eventually(blocked, what="the call waiting for a connection")
    return pending


async def test_a_call_waiting_when_the_credentials_rotate_says_what_the_new_channel_is() -> None:
    # The old channel comes up, the call goes on the new one (TLS to a plaintext router: never
    # up): never sent, so not `maybe_run` (the caller may send it again).
    port = free_port()
    back = RealtimeRouter("back")
    servicer = (router_service_pb2_grpc.add_RouterServiceServicer_to_server, back)
    with SyncRouterClient(
        f"127.0.0.1:{port}", options=_FAST_RECONNECT, ready_wait_s=NEVER_S
    ) as client:
        pending = await _waiting(client, _chat)
        client.use_credentials(grpc.ssl_channel_credentials())
        async with serve_grpc(servicer, options=SERVER_OPTIONS, port=port):
            with pytest.raises(RouterError) as refused:
                await pending
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not refused.value.details.maybe_run
    assert back.calls == 0


async def test_closing_the_client_after_a_rotation_cancels_a_call_still_waiting() -> None:
    # Waiting on the replaced channel: it ends CANCELLED with the client (not a RuntimeError).
    with SyncRouterClient(f"127.0.0.1:{free_port()}", ready_wait_s=NEVER_S) as client:
        pending = await _waiting(client, _chat)
        client.use_credentials(grpc.ssl_channel_credentials())
        with pytest.raises(RouterError) as ended:
            async with asyncio.timeout(30):  # hang guard: the bound is out of reach
                await asyncio.to_thread(client.close)
                await pending
    assert ended.value.grpc_code is grpc.StatusCode.CANCELLED


async def test_a_call_waiting_when_the_credentials_rotate_goes_on_the_new_channel_at_once() -> None:
    # No router comes: only the rotation ends the wait (the bound is out of reach), as the async
    # gate's; the new channel (TLS, nothing listens) refuses it unsent.
    with SyncRouterClient(f"127.0.0.1:{free_port()}", ready_wait_s=NEVER_S) as client:
        pending = await _waiting(client, _chat)
        client.use_credentials(grpc.ssl_channel_credentials())
        with pytest.raises(RouterError) as refused:
            async with asyncio.timeout(30):  # hang guard: the bound is out of reach
                await pending
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not refused.value.details.maybe_run
