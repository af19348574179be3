"""Every stream the async client makes waits for a connection as ``chat_stream`` does
(clients/_ready.py `LateStart`): MediaStream, Realtime, and ChatStream through interceptors; and a
stream that may have run says so (`maybe_run`) when its connection drops. Against real grpc.aio
servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import grpc
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import media_pb2, router_service_pb2, router_service_pb2_grpc
from tests.clients.fake_router import SERVER_OPTIONS, FakeRouter, chat_request
from tests.clients.fake_router import serving as fake_serving
from tests.clients.test_ready_wait import _FAST_RECONNECT, AT_ONCE_S, NEVER_S, _refused
from tests.clients.test_retries import HangsFirst, cut_proxy, serving
from tests.helpers import free_port, serve_grpc

pytestmark = pytest.mark.timeout(60)


class RealtimeRouter(FakeRouter):
    """Answers each Realtime message with an event naming it; a close ends the session."""

    async def Realtime(
        self,
        requests: AsyncIterator[router_service_pb2.RealtimeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[router_service_pb2.RealtimeResponse]:
        self._seen(context)
        async for request in requests:
            if request.HasField("close"):
                yield router_service_pb2.RealtimeResponse(close=request.close)
                return
            yield router_service_pb2.RealtimeResponse(event_json=str(request.WhichOneof("message")))


class PassThrough(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    """An interceptor that changes nothing (tracing's place): ChatStream keeps the stub's own."""

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(client_call_details, request)


def _media_request(model: str = "m") -> router_service_pb2.MediaStreamRequest:
    return router_service_pb2.MediaStreamRequest(params=media_pb2.MediaParams(model=model))


async def _media(client: RouterClient) -> list[str | None]:
    async with client.media_stream(_media_request(), timeout=30) as stream:
        return [message.WhichOneof("event") async for message in stream]


async def _intercepted_chat(client: RouterClient) -> list[str | None]:
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    async with client.chat_stream(request, timeout=30) as stream:
        return [message.WhichOneof("event") async for message in stream]


async def _realtime(client: RouterClient) -> list[str | None]:
    async with client.realtime(timeout=30) as session:
        await session.send(
            router_service_pb2.RealtimeRequest(open=router_service_pb2.RealtimeOpen())
        )
        await session.send(
            router_service_pb2.RealtimeRequest(close=router_service_pb2.RealtimeClose())
        )
        return [message.WhichOneof("message") async for message in session]


@pytest.mark.parametrize(
    ("call", "interceptors", "expected"),
    [
        (_media, (), ["chunk", "summary"]),
        (_intercepted_chat, (PassThrough(),), ["chunk", "chunk", "summary"]),
        (_realtime, (), ["event_json", "close"]),
    ],
)
async def test_a_stream_made_while_the_router_restarts_starts_once_it_is_back(
    call: Callable[[RouterClient], Awaitable[list[str | None]]],
    interceptors: tuple[Any, ...],
    expected: list[str | None],
) -> None:
    port = free_port()
    async with RouterClient(
        f"127.0.0.1:{port}",
        options=_FAST_RECONNECT,
        interceptors=interceptors,
        ready_wait_s=NEVER_S,
    ) as client:
        await _refused(client)
        pending = asyncio.ensure_future(call(client))
        back = RealtimeRouter("back")
        servicer = (router_service_pb2_grpc.add_RouterServiceServicer_to_server, back)
        async with serve_grpc(servicer, options=SERVER_OPTIONS, port=port):
            messages = await pending
    assert messages == expected and back.calls == 1


async def test_a_realtime_session_closed_while_it_waits_sends_nothing() -> None:
    async with RouterClient(f"127.0.0.1:{free_port()}") as client:
        await _refused(client)
        session = client.realtime(timeout=None)
        await session.aclose()
        with pytest.raises(RouterError) as ended:
            await session.send(
                router_service_pb2.RealtimeRequest(open=router_service_pb2.RealtimeOpen())
            )
        await session.done_writing()  # nothing to end: no call was made
    assert ended.value.grpc_code is grpc.StatusCode.CANCELLED
    assert session._call is None  # never started: no router saw it


async def test_a_media_stream_the_router_took_says_it_may_have_run_when_its_connection_drops() -> (
    None
):
    router = FakeRouter("r")
    async with serving(router) as target, cut_proxy(target) as (proxy, via):
        async with (
            RouterClient(via) as client,
            client.media_stream(_media_request("hang"), timeout=30) as stream,
        ):
            first = await anext(stream)  # the router took it, and is on it
            proxy.cut()
            with pytest.raises(RouterError) as dropped:
                await anext(stream)
    assert first.HasField("chunk")
    assert dropped.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert dropped.value.details.maybe_run  # the edge tells an SDK not to retry it
    assert router.calls == 1


async def test_a_stream_first_read_after_the_credentials_rotate_waits_on_the_new_channel() -> None:
    # Made while the channel was not up; the old channel came up (a call runs there) and the
    # credentials rotated before its first read: it is sent on the new channel (TLS to a
    # plaintext router: never up), and what it says is that channel's, not the old one's
    # (UNAVAILABLE, never sent: the caller may send it again; not `maybe_run`). Its wait there
    # ends at the bound, at once: nothing else would end it.
    router = HangsFirst("r")
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    async with serving(router) as target, RouterClient(target, ready_wait_s=AT_ONCE_S) as client:
        stream = client.chat_stream(request, timeout=30)
        assert stream._call is None  # the channel was idle: it starts at its first read
        hanging = asyncio.ensure_future(client.chat(chat_request("m"), timeout=30))
        async with asyncio.timeout(10):
            await router.started.wait()  # the old channel is up
        client.use_credentials(grpc.ssl_channel_credentials())
        with pytest.raises(RouterError) as refused:
            await anext(stream)
        hanging.cancel()
        await asyncio.gather(hanging, return_exceptions=True)
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not refused.value.details.maybe_run
    assert router.calls == 1  # the hanging chat alone


async def test_a_realtime_done_writing_on_a_call_that_reached_no_router_is_a_router_error() -> None:
    """The router stopped after the client's connection was up: the session's call is made
    at once and fails at once. Its `done_writing` raised grpc's internal ExecuteBatchError
    (grpc says the failed call's status on a write, not on its half-close): a RouterError
    UNAVAILABLE now, as its `send` says, gRPC's own (no router answered)."""
    async with AsyncExitStack() as stack:
        router = AsyncExitStack()
        _, target = await router.enter_async_context(fake_serving("gone"))
        stack.push_async_callback(router.aclose)
        client = await stack.enter_async_context(RouterClient(target, ready_wait_s=0))
        await client.chat(chat_request())
        await router.aclose()
        async with client.realtime() as session:
            with pytest.raises(RouterError) as failed:
                await session.done_writing()
    assert failed.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert failed.value.details.bare
