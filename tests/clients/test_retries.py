"""Retries of reads no router took (clients/_base.py `RETRY_POLICY`, `IDEMPOTENT_METHODS`), none
of what a router answered itself (`grpc-retry-pushback-ms: -1`, clients/errors.py
`to_grpc_status`) and none of a call that may have run (its connection dropped after the router
took it): against real grpc.aio servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import pytest

from clients import RouterClient, RouterError, to_grpc_status
from clients.errors import ErrorDetails
from clients.switchboard.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from tests.clients.fake_router import SERVER_OPTIONS, FakeRouter, chat_request
from tests.helpers import close_listener, eventually, free_port, serve_grpc

pytestmark = pytest.mark.timeout(60)


class Flaky(FakeRouter):
    """Answers UNAVAILABLE to the first `failures` calls, the transport's way (no pushback) or
    the router's (`to_grpc_status`: pushback -1); then a completion (a model list)."""

    def __init__(self, failures: int, *, as_router: bool) -> None:
        super().__init__("flaky")
        self.failures = failures
        self.as_router = as_router
        self.calls = 0

    async def _fail_first(self, context: grpc.aio.ServicerContext) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            if self.as_router:
                details = ErrorDetails(
                    code=grpc.StatusCode.UNAVAILABLE, message="no upstream", reason="UPSTREAM"
                )
                await context.abort_with_status(to_grpc_status(details))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")

    async def Chat(
        self, request: router_service_pb2.ChatRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ChatResponse:
        await self._fail_first(context)
        completion = chat_pb2.ChatCompletion(model=request.params.model)
        return router_service_pb2.ChatResponse(completion=completion)

    async def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        await self._fail_first(context)
        return router_service_pb2.ListModelsResponse(models=[router_service_pb2.ModelInfo(id="m")])


@asynccontextmanager
async def serving(servicer: FakeRouter, port: int = 0) -> AsyncIterator[str]:
    async with serve_grpc(
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, servicer),
        options=SERVER_OPTIONS,
        port=port,
    ) as target:
        yield target


async def test_a_read_no_router_took_is_tried_again() -> None:
    flaky = Flaky(2, as_router=False)
    async with serving(flaky) as target, RouterClient(target) as client:
        answer = await client.list_models(timeout=30)
    assert [model.id for model in answer.models] == ["m"]
    assert flaky.calls == 3


async def test_a_chat_that_met_an_unavailable_is_not_sent_again() -> None:
    flaky = Flaky(1, as_router=False)  # for all the client knows, the router ran it
    async with serving(flaky) as target, RouterClient(target) as client:
        with pytest.raises(RouterError) as refused:
            await client.chat(chat_request("m"), timeout=30)
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert flaky.calls == 1


async def test_an_unavailable_the_router_answers_itself_is_not_retried() -> None:
    flaky = Flaky(1, as_router=True)
    async with serving(flaky) as target, RouterClient(target) as client:
        with pytest.raises(RouterError) as refused:
            await client.chat(chat_request("m"), timeout=30)
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert refused.value.details.message == "no upstream"
    assert flaky.calls == 1  # routing is never run twice for one call


async def test_a_read_made_while_the_router_restarts_is_answered_once_it_is_back() -> None:
    port = free_port()
    async with RouterClient(f"127.0.0.1:{port}") as client:
        pending = client.list_models(timeout=30)
        channel: grpc.aio.Channel = client._channel  # the client's own, to see it fail first
        call = asyncio.ensure_future(pending)

        async def refused() -> bool:
            state = channel.get_state(try_to_connect=False)
            return bool(state is grpc.ChannelConnectivity.TRANSIENT_FAILURE)

        await eventually(refused, what="the first attempt refused")
        back = Flaky(0, as_router=False)
        async with serving(back, port):
            answer = await call
    assert [model.id for model in answer.models] == ["m"] and back.calls == 1


class CutProxy:
    """A TCP proxy on loopback in front of a router whose connections `cut()` resets at once:
    a connection that drops after the router took a call. New connections still go through."""

    def __init__(self, upstream: str) -> None:
        self.host, _, port = upstream.rpartition(":")
        self.port = int(port)
        self.writers: set[asyncio.StreamWriter] = set()
        self.lives: set[asyncio.Task[None]] = set()
        self.ending: set[asyncio.StreamWriter] = set()  # cut, their sockets closing
        self.closed = False

    def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A plain callable, so each connection is known (and `cut()` reaches it) as it comes,
        not once its task first runs: one accepted as the test ends is closed, not leaked."""
        if self.closed:  # accepted just before the listener closed: not piped, closed at once
            writer.transport.abort()
            self.ending.add(writer)
            return
        self.writers.add(writer)
        life = asyncio.ensure_future(self._pipe_both(reader, writer))
        self.lives.add(life)
        life.add_done_callback(self.lives.discard)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The connection's life: pipe both ways until one ends."""
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
            self.writers.add(up_writer)
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(self._pipe(reader, up_writer))
                pipes.create_task(self._pipe(up_reader, writer))
        except* OSError:  # ConnectionError is one: cut, or the other side ended
            pass
        finally:
            self.cut()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65_536):
            sink.write(data)
            await sink.drain()
        raise ConnectionResetError  # one side ended: end the other with it

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()  # RST, as a crashed host or a balancer dropping it
        self.ending |= self.writers
        self.writers.clear()

    async def close(self) -> None:
        """Cut every connection and wait until each is closed and each life has ended. Called
        once the listener is closed (`close_listener`), so every connection it accepted has
        reached `accept` by now."""
        self.cut()
        while self.lives:
            await asyncio.wait(set(self.lives))
        ending, self.ending = self.ending, set()
        await asyncio.gather(*(writer.wait_closed() for writer in ending), return_exceptions=True)


@asynccontextmanager
async def cut_proxy(upstream: str) -> AsyncIterator[tuple[CutProxy, str]]:
    proxy = CutProxy(upstream)
    server = await asyncio.start_server(proxy.accept, "127.0.0.1", 0)
    try:
        yield proxy, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        proxy.closed = True  # a connection accepted from now on is closed as it comes
        await close_listener(server)
        await proxy.close()


class HangsFirst(FakeRouter):
    """Holds its first call of each method until cancelled (the router working on it); answers
    the later ones."""

    async def Chat(
        self, request: router_service_pb2.ChatRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ChatResponse:
        if self.calls == 0:
            request.params.model = "hang"
        return await super().Chat(request, context)

    async def ChatStream(
        self, request: router_service_pb2.ChatStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_service_pb2.ChatStreamResponse]:
        if self.calls == 0:
            request.params.model = "hang-first"
        async for message in super().ChatStream(request, context):
            yield message

    async def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        if self.calls == 0:
            self._seen(context)
            await self._hang()
        return await super().ListModels(request, context)


async def _chat(client: RouterClient) -> object:
    return await client.chat(chat_request("m"), timeout=30)


async def _chat_stream(client: RouterClient) -> object:
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    async with client.chat_stream(request, timeout=30) as stream:
        return [message async for message in stream]


@pytest.mark.parametrize("call", [_chat, _chat_stream])
async def test_a_call_the_router_took_is_not_sent_again_when_its_connection_drops(
    call: Callable[[RouterClient], Awaitable[object]],
) -> None:
    router = HangsFirst("r")
    async with serving(router) as target, cut_proxy(target) as (proxy, via):
        async with RouterClient(via) as client:
            pending = asyncio.ensure_future(call(client))
            async with asyncio.timeout(10):
                await router.started.wait()
            proxy.cut()
            with pytest.raises(RouterError) as dropped:
                await pending
    assert dropped.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert dropped.value.details.maybe_run  # the edge tells an SDK not to retry it
    assert router.calls == 1  # run (and billed) once: the caller decides whether to ask again


async def test_a_read_the_router_took_is_sent_again_when_its_connection_drops() -> None:
    router = HangsFirst("r")
    async with serving(router) as target, cut_proxy(target) as (proxy, via):
        async with RouterClient(via) as client:
            pending = asyncio.ensure_future(client.list_models(timeout=30))
            async with asyncio.timeout(10):
                await router.started.wait()
            proxy.cut()
            answer = await pending
    assert [model.id for model in answer.models] == ["r"]
    assert router.calls == 2
