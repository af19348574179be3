"""Gemini's own output bounds in a caller's extras (`generationConfig.maxOutputTokens`,
`candidateCount`) are held to the router's bounds and counted in its tpm as OpenAI's are: Gemini
takes them over the typed fields (the caller's extras win), so they bypassed both."""

from __future__ import annotations

from typing import Any, TypeVar

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

ALICE = "sk-alice-native-bounds"


Request = TypeVar("Request", pb.ChatRequest, pb.ChatStreamRequest)


def with_config(request: Request, **config: Any) -> Request:
    request.params.extra_json = orjson.dumps({"generationConfig": config}).decode()
    return request


@pytest.mark.parametrize(
    ("field", "value", "bound"),
    [("maxOutputTokens", 1001, "1000"), ("maxOutputTokens", 0, "1000"), ("candidateCount", 3, "2")],
)
async def test_gemini_bounds_in_extras_are_held_to_the_routers(
    fake: FakeUpstream, start_router: StartRouter, field: str, value: int, bound: str
) -> None:
    server = {"port": 0, "max_tokens_ceiling": 1000, "max_n": 2}
    router = await start_router(base_config(fake.base_url, server=server))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(with_config(chat(), **{field: value}))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = details_from_rpc_error(caught.value)
    assert details.openai_param == f"generationConfig.{field}"
    assert f"between 1 and {bound}" in details.message
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in router.stub.ChatStream(with_config(chat_stream(), **{field: value})):
            pass
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert fake.state.calls() == []
    await router.stub.Chat(with_config(chat(), maxOutputTokens=1000, candidateCount=2))


async def test_a_gemini_bound_in_extras_counts_in_the_tpm_estimate(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(guarded_config(fake.base_url, client("alice", ALICE, tpm=300)))
    await router.stub.Chat(chat(), metadata=bearer(ALICE))  # a few tokens once settled
    # 299 output tokens and the prompt's are more than the window has left (without the
    # extras' bound the estimate was 256 and the call passed).
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(with_config(chat(), maxOutputTokens=299), metadata=bearer(ALICE))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "300 tokens per minute" in details_from_rpc_error(caught.value).message
    await router.stub.Chat(with_config(chat(), maxOutputTokens=200), metadata=bearer(ALICE))
