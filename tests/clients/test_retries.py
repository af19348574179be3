"""Retries of calls no router took (clients/_base.py `RETRY_POLICY`), and none of what a router
answered itself (`grpc-retry-pushback-ms: -1`, clients/errors.py `to_grpc_status`): against real
grpc.aio servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from clients import RouterClient, RouterError, to_grpc_status
from clients.errors import ErrorDetails
from clients.switchboard.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from tests.clients.fake_router import SERVER_OPTIONS, FakeRouter, chat_request
from tests.helpers import eventually, free_port, serve_grpc

pytestmark = pytest.mark.timeout(60)


class Flaky(FakeRouter):
    """Answers UNAVAILABLE to the first `failures` calls, the transport's way (no pushback) or
    the router's (`to_grpc_status`: pushback -1); then a completion."""

    def __init__(self, failures: int, *, as_router: bool) -> None:
        super().__init__("flaky")
        self.failures = failures
        self.as_router = as_router
        self.calls = 0

    async def Chat(
        self, request: router_service_pb2.ChatRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ChatResponse:
        self.calls += 1
        if self.calls <= self.failures:
            if self.as_router:
                details = ErrorDetails(
                    code=grpc.StatusCode.UNAVAILABLE, message="no upstream", reason="UPSTREAM"
                )
                await context.abort_with_status(to_grpc_status(details))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        completion = chat_pb2.ChatCompletion(model=request.params.model)
        return router_service_pb2.ChatResponse(completion=completion)


@asynccontextmanager
async def serving(servicer: Flaky) -> AsyncIterator[str]:
    async with serve_grpc(
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, servicer),
        options=SERVER_OPTIONS,
    ) as target:
        yield target


async def test_a_call_no_router_took_is_tried_again() -> None:
    flaky = Flaky(2, as_router=False)
    async with serving(flaky) as target, RouterClient(target) as client:
        answer = await client.chat(chat_request("m"), timeout=30)
    assert answer.completion.model == "m"
    assert flaky.calls == 3


async def test_an_unavailable_the_router_answers_itself_is_not_retried() -> None:
    flaky = Flaky(1, as_router=True)
    async with serving(flaky) as target, RouterClient(target) as client:
        with pytest.raises(RouterError) as refused:
            await client.chat(chat_request("m"), timeout=30)
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert refused.value.details.message == "no upstream"
    assert flaky.calls == 1  # routing is never run twice for one call


async def test_a_call_made_while_the_router_restarts_is_answered_once_it_is_back() -> None:
    port = free_port()
    async with RouterClient(f"127.0.0.1:{port}") as client:
        pending = client.chat(chat_request("m"), timeout=30)
        channel: grpc.aio.Channel = client._channel  # the client's own, to see it fail first
        call = asyncio.ensure_future(pending)

        async def refused() -> bool:
            state = channel.get_state(try_to_connect=False)
            return bool(state is grpc.ChannelConnectivity.TRANSIENT_FAILURE)

        await eventually(refused, what="the first attempt refused")
        back = Flaky(0, as_router=False)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        router_service_pb2_grpc.add_RouterServiceServicer_to_server(back, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        try:
            answer = await call
        finally:
            await server.stop(None)
    assert answer.completion.model == "m" and back.calls == 1
