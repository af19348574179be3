"""A `CallObserver` sees every call of a `RouterClient`: its full method name, the metadata it
may add to, the started call (whose end it learns from the done callback), and a call that could
not start. Against the real grpc.aio test servicer of test_router_client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from clients import ObservedCall, RouterClient, RouterError
from tests.clients.fake_router import (
    FakeRouter,
    chat_request,
    serving,
    stream_request,
    within,
)


@dataclass
class Seen:
    method: str
    metadata: tuple[tuple[str, str | bytes], ...]
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    code: grpc.StatusCode | None = None
    failed: BaseException | None = None

    def attach(self, call: Any) -> None:
        call.add_done_callback(self._done)

    def _done(self, call: Any) -> None:
        self.code = grpc.StatusCode.CANCELLED if call.cancelled() else None
        self.ended.set()

    def fail(self, exc: BaseException) -> None:
        self.failed = exc
        self.ended.set()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Seen] = []

    def start(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> ObservedCall:
        seen = Seen(method, (*metadata, ("x-observed", str(len(self.seen)))))
        self.seen.append(seen)
        return seen


@pytest.fixture
async def router() -> AsyncIterator[tuple[FakeRouter, str]]:
    async with serving("a") as served:
        yield served


async def test_the_observer_sees_each_call_and_its_end(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    recorder = Recorder()
    async with RouterClient(target, api_key="sk-client", observer=recorder) as client:
        await client.chat(chat_request("gpt"), metadata=[("x-session-id", "s1")])
        async with client.chat_stream(stream_request()) as stream:
            _ = [event async for event in stream]
        await client.get_routing_stats()
        for seen in recorder.seen:
            await within(seen.ended)
    assert [s.method for s in recorder.seen] == [
        "/switchboard.v1.RouterService/Chat",
        "/switchboard.v1.RouterService/ChatStream",
        "/switchboard.v1.AdminService/GetRoutingStats",
    ]
    # What the observer added reached the router, beside the caller's own metadata.
    assert [m["x-observed"] for m in fake.metadata] == ["0", "1", "2"]
    assert fake.metadata[0]["x-session-id"] == "s1"
    assert fake.metadata[0]["authorization"] == "Bearer sk-client"
    assert all(s.code is None and s.failed is None for s in recorder.seen)


async def test_a_cancelled_call_ends_cancelled_for_the_observer(
    router: tuple[FakeRouter, str],
) -> None:
    fake, target = router
    recorder = Recorder()
    async with RouterClient(target, observer=recorder) as client:
        caller = asyncio.create_task(client.chat(chat_request("hang")))
        await within(fake.started)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await within(recorder.seen[0].ended)
    assert recorder.seen[0].code is grpc.StatusCode.CANCELLED


async def test_a_call_that_cannot_start_is_reported_as_failed(
    router: tuple[FakeRouter, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = router
    recorder = Recorder()
    async with RouterClient(target, observer=recorder) as client:
        stub = client._stub("router")

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise grpc.aio.UsageError("the channel is closed")

        monkeypatch.setattr(stub, "Chat", refuse)
        with pytest.raises(grpc.aio.UsageError):
            await client.chat(chat_request())
    assert isinstance(recorder.seen[0].failed, grpc.aio.UsageError)
    assert not isinstance(recorder.seen[0].failed, RouterError)
