"""A background response whose conversation is deleted after its start's check: found gone
before its call, it ends `failed` with no upstream call (nothing spent, its start given back);
gone only once the call answered, the answer paid for is kept: `completed` with its output, its
`conversation` null (the answer is in none), the failed append logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.engine._tokens import estimate_chat_tokens
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.responses import STOPPED_MESSAGE
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config
from tests.router_service.responses.test_background_rpcs import B, loaded, start_request

TPM = 100_000


class SecondConversationReadWaits(MemoryStateStore):
    """Memory state whose second read of a conversation (the first: the start's check) waits
    for `gate`: a delete can come between the start and what the job reads next."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reads = 0
        self.waiting = False

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        if any(name.startswith("conv:") for name in names):
            self.reads += 1
            if self.reads == 2:
                self.waiting = True
                await self.gate.wait()
        return await super().get_documents(names)


async def _router(
    fake: FakeUpstream, start_router: StartRouter, store: MemoryStateStore | None = None
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("b", B, tpm=TPM))
    return await start_router(config, clock=ManualClock(), store=store)


async def _continuing(router: RouterHandle, response_id: str, stream: bool) -> tuple[str, str]:
    """Start a background response continuing a new conversation: its id and the conversation's."""
    made = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(B))
    request = start_request(response_id)
    request.stream = stream
    request.conversation_id = made.conversation.id
    await router.stub.StartBackgroundResponse(request, metadata=bearer(B))
    return response_id, made.conversation.id


async def _at_its_read(store: SecondConversationReadWaits) -> None:
    """Until the job waits at its read of its conversation, before its call."""

    async def waiting() -> bool:
        return store.waiting

    await eventually(waiting, what="the job's read of its conversation")


async def _delete(router: RouterHandle, conversation_id: str) -> None:
    delete = pb.DeleteConversationRequest(id=conversation_id)
    await router.stub.DeleteConversation(delete, metadata=bearer(B))


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_conversation_deleted_before_the_call_fails_the_job_uncalled(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    store = SecondConversationReadWaits()
    router = await _router(fake, start_router, store)
    response_id, conversation_id = await _continuing(router, "resp_g1", stream)

    await _at_its_read(store)
    await _delete(router, conversation_id)
    store.gate.set()
    assert await router.server.jobs.settle(5) == 0

    done = await loaded(router, B, response_id)
    assert done.background_status == "failed"
    error = orjson.loads(done.response_json)["error"]
    assert conversation_id in error["message"] and "not found" in error["message"]
    assert fake.state.count() == 0  # no upstream call: nothing spent on it
    # Its start's estimate was given back: a Chat call finds the client's tokens all there.
    answer = await router.stub.Chat(chat(), metadata=bearer(B))
    assert answer.route.rate_limit.remaining_tokens == TPM - estimate_chat_tokens(chat().params)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_conversation_deleted_during_the_call_keeps_the_answer_completed(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    router = await _router(fake, start_router)
    fake.state.hold()
    response_id, conversation_id = await _continuing(router, "resp_g2", stream)
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the running call")
    await _delete(router, conversation_id)
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        fake.state.release()
        assert await router.server.jobs.settle(5) == 0

    done = await loaded(router, B, response_id)
    assert done.background_status == "completed"
    response = orjson.loads(done.response_json)
    assert response["output"][0]["content"][0]["text"] == "Echo: hello"
    assert response["conversation"] is None and response.get("error") is None
    assert [m.text for m in done.messages] == ["hello", "Echo: hello"]  # to continue from
    told = [r.getMessage() for r in caplog.records if conversation_id in r.getMessage()]
    assert len(told) == 1 and response_id in told[0]


class GoneAndGiveBacksFail(SecondConversationReadWaits):
    """As `SecondConversationReadWaits`, and its un-counts (a give-back) raise (the store lost)."""

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        if delta < 0 or requests < 0:
            raise StoreUnavailableError("redis: connection lost")
        await super().add_tokens(resource, window, delta, requests, lease_id=lease_id)


async def test_a_failed_give_back_leaves_the_uncalled_job_its_conversation_error(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    store = GoneAndGiveBacksFail()
    router = await _router(fake, start_router, store)
    response_id, conversation_id = await _continuing(router, "resp_g3", stream=False)

    await _at_its_read(store)
    await _delete(router, conversation_id)
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        store.gate.set()
        assert await router.server.jobs.settle(5) == 0

    done = await loaded(router, B, response_id)
    assert done.background_status == "failed"
    error = orjson.loads(done.response_json)["error"]
    assert conversation_id in error["message"] and "not found" in error["message"], error
    assert fake.state.count() == 0
    told = [r for r in caplog.records if "start back failed" in r.getMessage()]
    assert len(told) == 1 and B not in caplog.text


async def test_a_job_stopped_uncalled_whose_give_back_fails_is_written_failed(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    store = GoneAndGiveBacksFail()
    router = await _router(fake, start_router, store)
    response_id, _ = await _continuing(router, "resp_g4", stream=False)

    await _at_its_read(store)
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        await router.server.jobs.shutdown(0)  # stopped before its call: its start goes back

    assert router.server.jobs.running == 0
    stopped = await loaded(router, B, response_id)
    assert stopped.background_status == "failed"  # not left in_progress on the store's error
    assert STOPPED_MESSAGE in stopped.response_json
    assert fake.state.count() == 0
    told = [r for r in caplog.records if "start back failed" in r.getMessage()]
    assert len(told) == 1 and B not in caplog.text
