"""A Responses API response stored through one router replica is continued, read back and
deleted through another: the documents live on the shared Redis (`{prefix}:doc:`), not in a
replica."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.http_edge.harness import Edge
from tests.replicas.harness import replica_config, two_replicas
from tests.replicas.redis_fixtures import keys_under


def documents(redis_url: str, redis_prefix: str) -> list[str]:
    return [key for key in keys_under(redis_url, redis_prefix) if ":doc:resp:" in key]


async def test_a_response_stored_on_one_replica_is_continued_on_another(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix, responses={"store_ttl_s": 60})
    one, two = await two_replicas(start_router, config)
    edges = [await start_edge(one), await start_edge(two)]
    sdks = [
        openai.AsyncOpenAI(base_url=f"{e.base_url}/v1", api_key="sk-x", max_retries=0, timeout=10)
        for e in edges
    ]
    try:
        first = await sdks[0].responses.create(model="a", input="remember this")
        assert documents(redis_url, redis_prefix)
        second = await sdks[1].responses.create(
            model="a", input="what was it?", previous_response_id=first.id
        )
        assert second.output_text == "Echo: what was it?"
        record = fake.state.last(path="/chat/completions")
        assert record is not None
        assert [m["content"] for m in record.body["messages"]] == [
            "remember this",
            "Echo: remember this",
            "what was it?",
        ]
        retrieved = await sdks[1].responses.retrieve(first.id)  # read back on the other
        assert retrieved.output_text == "Echo: remember this"
        assert len(documents(redis_url, redis_prefix)) == 2
        await sdks[1].responses.delete(first.id)  # deleted through one, gone from both
        for sdk in sdks:
            with pytest.raises(openai.NotFoundError):
                await sdk.responses.retrieve(first.id)
        assert len(documents(redis_url, redis_prefix)) == 1  # the second one's
    finally:
        for sdk in sdks:
            await sdk.close()
