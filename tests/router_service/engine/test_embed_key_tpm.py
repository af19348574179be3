"""An embeddings request counts against its key's tokens-per-minute window as a chat call does:
its texts estimated before the call (four characters a token), the upstream's reported count
after it. A key whose minute its embeddings filled is skipped, not sent more."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    key = {"key": "co-key", "tpm": 1000}
    provider = {"kind": "cohere", "base_url": fake.url, "keys": [key], "queue_timeout_s": 0}
    config = {
        "providers": {"co": provider},
        "models": {"embed": {"deployments": [{"provider": "co", "model": "embed-v4.0"}]}},
        "server": {"port": 0},
    }
    # The minute's window moves only when told: both calls fall in the same one.
    return await start_router(config, clock=ManualClock())


def request(texts: list[str]) -> pb.EmbedRequest:
    params = embeddings_pb2.EmbeddingParams(
        model="embed", texts=embeddings_pb2.TextList(values=texts)
    )
    return pb.EmbedRequest(params=params)


async def refused(router: RouterHandle) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await router.stub.Embed(request(["one more"]), timeout=10)
    return failed.value.code()


async def test_the_reported_count_fills_the_keys_minute(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    texts = ["a b c d e f"] * 200  # estimated 600 tokens; Cohere bills 1,200

    first = await router.stub.Embed(request(texts))
    assert first.result.usage.prompt_tokens == 1200

    assert await refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(fake.state.calls(path="/v2/embed")) == 3  # the first's 96 + 96 + 8


async def test_the_estimate_holds_the_minute_while_the_call_is_upstream(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.hold()
    texts = [f"text number {i:04}" for i in range(300)]  # 16 characters: 5 tokens each
    first = asyncio.ensure_future(router.stub.Embed(request(texts)))
    try:
        await fake.state.wait_for(lambda: fake.state.held >= 1)
        assert await refused(router) == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        fake.state.release()
    assert (await first).result.usage.prompt_tokens == 900
