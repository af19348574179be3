"""`LocalChannel` against a real router: each call answers, fails, expires and is cancelled as
the same call over the router's port does (same code, details, trailing metadata, same
`clients.errors` reading), through the same interceptors (authentication, stream slots)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from clients import LocalChannel, RouterClient, RouterError
from clients.errors import ErrorDetails, details_from_rpc_error
from http_edge._health import RouterHealth
from router_service.auth import current_caller
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

ALICE = "sk-alice-local"
CHAT = "/switchboard.v1.RouterService/Chat"
RICH = "grpc-status-details-bin"
# What a call's end looks like from its caller: code, details, trailing metadata, as read back.
Ending = tuple[grpc.StatusCode, str, dict[str, Any], ErrorDetails]
Call = Callable[[Any], Awaitable[Any]]


async def _ending(call: Awaitable[Any]) -> Ending:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    trailing = dict(error.trailing_metadata() or ())
    # The rich status's bytes hold a map (ErrorInfo.metadata), serialized in no fixed order:
    # compared as read back (`details_from_rpc_error`).
    if RICH in trailing:
        trailing[RICH] = "present"
    return error.code(), error.details() or "", trailing, details_from_rpc_error(error)


async def _both(router: RouterHandle, call: Callable[[Any], Awaitable[Any]]) -> list[Ending]:
    """The same call's ending over the port, then in-process."""
    local = LocalChannel(router.server.in_process)
    try:
        return [await _ending(call(router.channel)), await _ending(call(local))]
    finally:
        await local.close()


def _unary(method: str, request: Any, **kwargs: Any) -> Callable[[Any], Awaitable[Any]]:
    def call(channel: Any) -> Awaitable[Any]:
        serialize = None if isinstance(request, bytes) else type(request).SerializeToString
        started: Awaitable[Any] = channel.unary_unary(method, request_serializer=serialize)(
            request, **kwargs
        )
        return started

    return call


@pytest.fixture
async def local(router: RouterHandle) -> AsyncIterator[RouterClient]:
    channel = LocalChannel(router.server.in_process)
    async with RouterClient("in-process", channel=channel) as client:
        yield client


async def test_a_chat_and_a_stream_answer_as_over_the_port(
    router: RouterHandle, local: RouterClient
) -> None:
    over_port = await router.stub.Chat(chat(), timeout=5)
    in_process = await local.chat(chat(), timeout=5)
    assert in_process.completion.choices == over_port.completion.choices
    assert in_process.route.deployment == over_port.route.deployment
    kinds = [m.WhichOneof("event") async for m in router.stub.ChatStream(chat_stream())]
    async with local.chat_stream(chat_stream()) as stream:
        assert [m.WhichOneof("event") async for m in stream] == kinds
    assert kinds[0] == "route" and kinds[-1] == "summary"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(_unary(CHAT, chat("no-such-model")), id="router-error"),
        pytest.param(_unary(CHAT, b"\xff\xff\xff"), id="undecodable"),
        pytest.param(_unary("/switchboard.v1.RouterService/Nope", b""), id="unknown-method"),
        pytest.param(_unary(CHAT, chat(text="x" * 5000)), id="over-the-size-limit"),
    ],
)
async def test_a_refused_call_ends_as_over_the_port(
    call: Call, fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(
        base_config(
            fake.base_url,
            server={"port": 0, "max_message_bytes": 4096},
            edge={"max_body_bytes": 4096},
        )
    )
    over_port, in_process = await _both(router, call)
    assert in_process == over_port


async def test_a_request_over_the_clients_own_limit_is_refused_as_over_the_port(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # The client's `max_message_bytes` (grpc's `max_send_message_length`) held only over the
    # port: in-process the request went to the router, and the upstream was called (and paid).
    large = "x" * 200_000
    endings = []
    for channel in (None, LocalChannel(router.server.in_process)):
        async with RouterClient(
            router.server.address, channel=channel, max_message_bytes=100_000
        ) as client:
            with pytest.raises(RouterError) as unary:
                await client.chat(chat(text=large), timeout=5)
            with pytest.raises(RouterError) as streamed:
                async with client.chat_stream(chat_stream(text=large), timeout=5) as stream:
                    await anext(stream)
            endings.append((unary.value.details, streamed.value.details))
    assert endings[1] == endings[0]
    assert endings[0][0].reason == "MESSAGE_TOO_LARGE"
    assert RouterError(endings[0][0]).http_status == 413
    assert not fake.state.records  # neither reached the upstream


async def test_metadata_over_grpcs_hard_limit_is_refused_as_over_the_port(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # Over the port grpc refuses metadata past its 16 KiB hard limit before the router sees
    # the call; in-process it was served, and the upstream called.
    refusals = []
    for large in ([("x-large", "a" * 17_000)], [(f"x-part-{i}", "a" * 1_000) for i in range(16)]):
        for channel in (None, LocalChannel(router.server.in_process)):
            async with RouterClient(router.server.address, channel=channel) as client:
                with pytest.raises(RouterError) as refused:
                    await client.chat(chat(), timeout=5, metadata=large)
                refusals.append((refused.value.grpc_code, refused.value.details.reason))
    assert set(refusals) == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "METADATA_TOO_LARGE")}
    assert not fake.state.records


async def test_an_upstream_failure_keeps_its_rich_status_and_pushback(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario.server_error(503))
    # Two routers: a failure cools its deployment down, and the next call would go elsewhere.
    wire, in_process_router = [await start_router(base_config(fake.base_url)) for _ in "ab"]
    over_port = await _ending(_unary(CHAT, chat())(wire.channel))
    local = LocalChannel(in_process_router.server.in_process)
    in_process = await _ending(_unary(CHAT, chat())(local))
    await local.close()
    assert in_process == over_port
    code, _, trailing, details = in_process
    assert code is grpc.StatusCode.UNAVAILABLE
    assert trailing["grpc-retry-pushback-ms"] == "-1"
    assert trailing[RICH] == "present" and details.provider == "beta"


async def test_a_keys_router_refuses_a_bad_key_alike(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(guarded_config(fake.base_url, client("alice", ALICE)))
    refused = _unary(CHAT, chat(), metadata=bearer("sk-intruder"))
    over_port, in_process = await _both(router, refused)
    assert in_process == over_port
    assert in_process[0] is grpc.StatusCode.UNAUTHENTICATED
    channel = LocalChannel(router.server.in_process)
    async with RouterClient("in-process", channel=channel, api_key=ALICE) as alice:
        assert (await alice.chat(chat(), timeout=5)).completion.choices


async def test_a_deadline_ends_the_call_and_its_handler(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.hold()
    expired = _unary(CHAT, chat(), timeout=0.3)
    over_port, in_process = await _both(router, expired)
    fake.state.release()
    # The router's own answer at its deadline, or grpc's if the caller's came first (a race
    # on the wire too: the router usually wins it, and in-process its answer has a moment).
    assert in_process[0] is over_port[0] is grpc.StatusCode.DEADLINE_EXCEEDED
    await _settled(router)


async def _settled(router: RouterHandle) -> None:
    """No handler task left, no key lease held."""

    async def ended() -> bool:
        return not router.server.in_process._running and await router.leases_held() == 0

    await eventually(ended, what="the in-process handlers ended and their leases given back")


async def test_a_caller_that_leaves_a_stream_gives_its_slot_and_lease_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(
        guarded_config(fake.base_url, client("alice", ALICE, max_concurrent_streams=1))
    )
    fake.state.set_scenario(Scenario(chunks=50, held_after_chunks=2))
    channel = LocalChannel(router.server.in_process)
    async with RouterClient("in-process", channel=channel, api_key=ALICE) as alice:
        async with alice.chat_stream(chat_stream()) as stream:
            async for message in stream:
                if message.WhichOneof("event") == "chunk":
                    break  # under way, held upstream
            with pytest.raises(RouterError) as caught:
                async with alice.chat_stream(chat_stream()) as second:
                    [m async for m in second]
            assert caught.value.grpc_code is grpc.StatusCode.RESOURCE_EXHAUSTED
        await _settled(router)
        fake.state.set_scenario(Scenario())
        async with alice.chat_stream(chat_stream()) as again:
            assert [m.WhichOneof("event") async for m in again][-1] == "summary"


async def test_a_cancelled_caller_cancels_the_handler(
    router: RouterHandle, fake: FakeUpstream, local: RouterClient
) -> None:
    fake.state.hold()
    call = asyncio.create_task(local.chat(chat()))

    async def upstream() -> bool:
        return fake.state.held == 1

    await eventually(upstream, what="the call upstream")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await _settled(router)
    assert fake.state.held == 0  # the upstream request was aborted too


async def test_a_stopping_router_ends_its_in_process_calls(
    router: RouterHandle, fake: FakeUpstream, local: RouterClient
) -> None:
    fake.state.set_scenario(Scenario(chunks=50, held_after_chunks=2))
    async with local.chat_stream(chat_stream()) as stream:
        await anext(stream)
        await router.server.shutdown(grace=0)
        with pytest.raises(RouterError) as caught:
            [m async for m in stream]
    assert caught.value.grpc_code is grpc.StatusCode.UNAVAILABLE  # as grpc's stop: retryable
    with pytest.raises(RouterError) as refused:
        await local.list_models()
    assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE


async def test_the_handler_context_stays_the_routers(local: RouterClient) -> None:
    """What the router sets for a call (its caller) is not left in the caller's task."""
    await local.chat(chat(), timeout=5)
    assert current_caller() is None


async def test_health_is_checked_in_process(router: RouterHandle) -> None:
    health = RouterHealth("in-process", channel=LocalChannel(router.server.in_process))
    try:
        assert await health.check(timeout=5) is None
        assert health.auth_mode == "open"
    finally:
        await health.aclose()
    channel = LocalChannel(router.server.in_process)
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )(health_pb2.HealthCheckRequest(service="switchboard.v1.RouterService"))
    assert (await check).status == health_pb2.HealthCheckResponse.SERVING
    assert dict(await check.trailing_metadata())["switchboard-auth"] == "open"


async def test_health_is_watched_in_process_as_over_the_port(router: RouterHandle) -> None:
    """grpc's health Watch writes its messages (`context.write`), as every streamed handler
    does behind the router's interceptors (`_written.py`): in-process, it streams the same."""
    channel = LocalChannel(router.server.in_process)
    request = health_pb2.HealthCheckRequest(service="switchboard.v1.RouterService")
    statuses = []
    try:
        for over in (router.channel, channel):
            watch = over.unary_stream(
                "/grpc.health.v1.Health/Watch",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )(request, timeout=5)
            statuses.append((await watch.read()).status)
            watch.cancel()
            assert await watch.code() is grpc.StatusCode.CANCELLED
    finally:
        await channel.close()
    assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 2
