"""A request that is not the call's message (a dict written as OpenAI's JSON, None, another
call's message) is a TypeError naming the message the call takes, before anything is sent, in
both clients, over a real channel to a real router.

grpc swallows a serializer's error: the async client sent the call with an EMPTY request (grpc.aio
logged "Exception serializing message!" and went on), which the router then answered as if asked
for nothing (a Chat "`messages` must contain at least one message", a ReportOutcome's lease not
found, so never returned); the blocking client failed INTERNAL "Exception serializing request!"
(HTTP 500, as if the router broke)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clients import ObservedCall, RouterClient, SyncRouterClient
from tests.conftest import RouterHandle
from tests.router_service.auth.helpers import chat, chat_stream

pytestmark = pytest.mark.timeout(60)

NOT_MESSAGES: list[Any] = [
    {"params": {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}},
    None,
]


class Started:
    """Sees each call the client starts (its `observer=`)."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def start(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> ObservedCall:
        self.methods.append(method)
        return _Observed(metadata)


class _Observed:
    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.metadata = metadata

    def attach(self, call: Any) -> None:
        return None

    def fail(self, exc: BaseException) -> None:
        return None


@pytest.mark.parametrize("request_", NOT_MESSAGES, ids=["dict", "none"])
async def test_the_async_client_refuses_what_is_not_the_calls_message(
    router: RouterHandle, request_: Any
) -> None:
    started = Started()
    async with RouterClient(router.server.address, observer=started) as client:
        with pytest.raises(TypeError, match=r"^Chat takes a .*_pb2\.ChatRequest, not"):
            await client.chat(request_, timeout=10)
        with pytest.raises(TypeError, match=r"^ChatStream takes a .*\.ChatStreamRequest, not"):
            client.chat_stream(request_, timeout=10)
        with pytest.raises(TypeError, match=r"^ReportOutcome takes a .*\.ReportOutcomeRequest"):
            await client.report_outcome(request_, timeout=10)
        async with client.realtime(timeout=10) as session:
            with pytest.raises(TypeError, match=r"^Realtime sends .*\.RealtimeRequest, not"):
                await session.send(request_)
        # Nothing was sent but the session (started as it was made, or at its first send).
        assert set(started.methods) <= {"/switchboard.v1.RouterService/Realtime"}
        # The client is none the worse: a right call goes through.
        assert (await client.chat(chat(), timeout=10)).route.deployment == "alpha/model-a"


async def test_another_calls_message_is_refused_by_both_clients(router: RouterHandle) -> None:
    async with RouterClient(router.server.address) as client:
        with pytest.raises(TypeError, match=r"^Chat takes .*\.ChatRequest, not ChatStreamRequest"):
            await client.chat(chat_stream())  # type: ignore[arg-type]

    def sync_call() -> None:
        with SyncRouterClient(router.server.address) as client:
            with pytest.raises(TypeError, match=r"^ChatStream takes .*, not ChatRequest$"):
                client.chat_stream(chat())  # type: ignore[arg-type]

    await asyncio.to_thread(sync_call)


@pytest.mark.parametrize("request_", NOT_MESSAGES, ids=["dict", "none"])
async def test_the_sync_client_refuses_what_is_not_the_calls_message(
    router: RouterHandle, request_: Any
) -> None:
    def calls() -> str:
        with SyncRouterClient(router.server.address) as client:
            with pytest.raises(TypeError, match=r"^Chat takes a .*\.ChatRequest, not"):
                client.chat(request_, timeout=10)
            with pytest.raises(TypeError, match=r"^ChatStream takes a .*\.ChatStreamRequest"):
                client.chat_stream(request_, timeout=10)
            with pytest.raises(TypeError, match=r"^MediaStream takes a .*\.MediaStreamRequest"):
                client.media_stream(request_, timeout=10)
            return client.chat(chat(), timeout=10).route.deployment

    assert await asyncio.to_thread(calls) == "alpha/model-a"
