"""A finished call's key release and session writes happen after its answer has left, on a store
that waits for the network; nothing is lost: the router's stop waits for them before the store
closes, a failure is logged, and the memory store still releases before the answer."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.engine import Afterwork
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.release_failures import logged_once


class GatedStore(MemoryStateStore):
    """Memory state whose releases wait for `gate`, as a Redis round trip waits for the reply;
    `events` tells the order of releases and the store's close."""

    completes_without_waiting = False

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.events: list[str] = []
        self.fail_releases = False

    async def release(self, resource: str, lease_id: str) -> None:
        await self.gate.wait()
        if self.fail_releases:
            raise StoreUnavailableError("redis: connection lost")
        await super().release(resource, lease_id)
        self.events.append("release")

    async def aclose(self) -> None:
        self.events.append("aclose")
        await super().aclose()


def _params(model: str = "chain") -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="a b c")]
    )


async def _settled(afterwork: Afterwork) -> None:
    await afterwork.drain()
    assert afterwork.pending == 0


async def test_a_unary_answer_leaves_before_its_key_is_released(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    store = GatedStore()
    router = await start_router(base_config(fake.base_url), store=store)

    response = await router.stub.Chat(pb.ChatRequest(params=_params()), timeout=5)

    assert response.completion.choices[0].message.text
    assert router.runtime.afterwork.pending == 1
    assert await router.leases_held(settled=False) == 1  # the release waits for its round trip
    store.gate.set()
    await _settled(router.runtime.afterwork)
    assert await router.leases_held() == 0
    assert store.events == ["release"]


async def test_an_embedding_answer_leaves_before_its_key_is_released(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    store = GatedStore()
    router = await start_router(base_config(fake.base_url), store=store)
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="hello")

    response = await router.stub.Embed(pb.EmbedRequest(params=params), timeout=5)

    assert len(response.result.data) == 1
    assert await router.leases_held(settled=False) == 1
    store.gate.set()
    await _settled(router.runtime.afterwork)
    assert await router.leases_held() == 0


async def test_a_stream_ends_before_its_key_is_released(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    store = GatedStore()
    router = await start_router(base_config(fake.base_url), store=store)

    call = router.stub.ChatStream(pb.ChatStreamRequest(params=_params()), timeout=5)
    kinds = [event.WhichOneof("event") async for event in call]

    assert kinds[-1] == "summary" and "chunk" in kinds
    assert await call.code() == grpc.StatusCode.OK  # the call ended, its status sent
    assert await router.leases_held(settled=False) == 1
    store.gate.set()
    await _settled(router.runtime.afterwork)
    assert await router.leases_held() == 0


async def test_stopping_the_router_waits_for_the_last_releases(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    store = GatedStore()
    router = await start_router(base_config(fake.base_url), store=store)
    await router.stub.Chat(pb.ChatRequest(params=_params()), timeout=5)
    await router.channel.close()

    class OpenWhenDraining(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "give their keys back" in record.getMessage():
                store.gate.set()

    handler = OpenWhenDraining()
    logger = logging.getLogger("switchboard.engine")
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="switchboard.engine"):
            await router.server.shutdown(grace=0.5)
    finally:
        logger.removeHandler(handler)

    # The release waited for the drain to begin, and the store closed only after it.
    assert store.events == ["release", "aclose"]


async def test_a_failed_release_is_logged_and_the_caller_has_its_answer(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    store = GatedStore()
    store.fail_releases = True
    router = await start_router(base_config(fake.base_url), store=store)

    response = await router.stub.Chat(pb.ChatRequest(params=_params()), timeout=5)
    store.gate.set()
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        await _settled(router.runtime.afterwork)

    assert response.completion.choices[0].message.text
    assert any("ending a finished attempt failed" in r.getMessage() for r in caplog.records)
    assert "sk-alpha" not in caplog.text


async def test_an_inline_release_failure_leaves_a_unary_answer_ok(
    failing_router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    router = failing_router
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        call = router.stub.Chat(pb.ChatRequest(params=_params()), timeout=5)
        response = await call

    assert await call.code() == grpc.StatusCode.OK
    assert response.completion.choices[0].message.text
    logged_once(caplog)


async def test_an_inline_release_failure_leaves_a_finished_stream_ok(
    failing_router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    router = failing_router
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        call = router.stub.ChatStream(pb.ChatStreamRequest(params=_params()), timeout=5)
        kinds = [event.WhichOneof("event") async for event in call]

    assert kinds[-1] == "summary" and "chunk" in kinds
    assert await call.code() == grpc.StatusCode.OK
    logged_once(caplog)


async def test_the_memory_store_releases_before_the_answer(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url))

    await router.stub.Chat(pb.ChatRequest(params=_params()), timeout=5)

    assert router.runtime.afterwork.pending == 0
    assert await router.leases_held() == 0


async def test_the_drain_gives_up_on_a_release_that_never_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = GatedStore()  # the gate never opens
    afterwork = Afterwork(store)
    stack = AsyncExitStack()
    stack.push_async_callback(store.release, "slot", "lease-1")
    await afterwork.close(stack)
    assert afterwork.pending == 1

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        await afterwork.drain(timeout_s=0.01)

    assert afterwork.pending == 0
    assert "did not finish within 0.01s" in caplog.text
    assert store.events == []
