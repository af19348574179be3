"""A call for a model the router does not know (NOT_FOUND `model_not_found`, the planner's) reached
no upstream: as a call refused as invalid, its estimate goes back from the caller's tpm and
budgets, and its rpm place too (`Admission.give_back`), on memory and on Redis; a background
response's start too (it resolves the model before queueing). Before, a few such calls got
the caller's next good ones 429."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest

from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

KEY = "sk-alice-unknown-0123"
RPM = 2
# Each unknown-model chat's estimate is over half of these: two kept would refuse the third.
LIMITS: dict[str, int] = {"rpm": RPM, "tpm": 1_000, "tokens_per_day": 1_000}


async def _not_found(call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND  # not 429


def _embed(model: str) -> pb.EmbedRequest:
    texts = embeddings_pb2.TextList(values=["a" * 2_400])
    return pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model=model, texts=texts))


async def _still_free(router: Any) -> None:
    """The minute's rpm places and the tokens are all still free: RPM good calls pass."""
    for _ in range(RPM):
        await router.stub.Chat(chat(max_tokens=500), metadata=bearer(KEY))
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await router.stub.Chat(chat(), metadata=bearer(KEY))
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # the limits still hold


async def test_calls_for_an_unknown_model_give_their_tokens_and_rpm_place_back(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    config = guarded_config(fake.base_url, client("alice", KEY, **LIMITS), state=state_section)
    router = await start_router(config, clock=ManualClock())  # one minute, one day all along
    for _ in range(RPM + 1):
        request = chat("no-such-model", max_tokens=500)
        await _not_found(router.stub.Chat(request, metadata=bearer(KEY)))
        streamed = router.stub.ChatStream(
            pb.ChatStreamRequest(params=request.params), metadata=bearer(KEY)
        )
        await _not_found(anext(aiter(streamed)))
        await _not_found(router.stub.Embed(_embed("no-such-embedder"), metadata=bearer(KEY)))
    assert not fake.state.calls()  # none reached an upstream
    await _still_free(router)


async def test_a_background_start_for_an_unknown_model_gives_its_tokens_back(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    config = guarded_config(fake.base_url, client("alice", KEY, **LIMITS), state=state_section)
    router = await start_router(config, clock=ManualClock())
    for number in range(3):
        queued = {"id": f"resp_u{number}", "object": "response", "created_at": 1, "output": []}
        start = pb.StartBackgroundResponseRequest(
            chat=chat("no-such-model", max_tokens=500),
            response_json=orjson.dumps(queued).decode(),
        )
        await _not_found(router.stub.StartBackgroundResponse(start, metadata=bearer(KEY)))
    assert not fake.state.calls()
    await _still_free(router)
