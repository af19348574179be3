"""A conversation started through one router replica is listed, changed and continued through
another (its document lives on the shared Redis, `{prefix}:doc:conv:`, with its TTL), and
changes made on both replicas at the same moment are all kept (each is one atomic append)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.http_edge.harness import Edge
from tests.replicas.harness import replica_config, two_replicas
from tests.replicas.redis_fixtures import keys_under

TTL_S = 3600


def conversation_keys(redis_url: str, redis_prefix: str) -> dict[str, int]:
    return {k: ttl for k, ttl in keys_under(redis_url, redis_prefix).items() if ":doc:conv:" in k}


@pytest.fixture
async def sdks(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[list[openai.AsyncOpenAI]]:
    """An SDK on an edge in front of each of two replicas on one Redis."""
    config = replica_config(fake.base_url, redis_url, redis_prefix, conversations={"ttl_s": TTL_S})
    one, two = await two_replicas(start_router, config)
    clients = [
        openai.AsyncOpenAI(base_url=f"{e.base_url}/v1", api_key="sk-x", max_retries=0, timeout=10)
        for e in (await start_edge(one), await start_edge(two))
    ]
    yield clients
    for client in clients:
        await client.close()


async def contents(sdk: openai.AsyncOpenAI, conversation_id: str) -> list[str]:
    items: list[Any] = [
        item async for item in sdk.conversations.items.list(conversation_id, order="asc")
    ]
    return [item.content[0].text for item in items]


async def test_a_conversation_lives_on_redis_for_every_replica(
    sdks: list[openai.AsyncOpenAI], fake: FakeUpstream, redis_url: str, redis_prefix: str
) -> None:
    conversation = await sdks[0].conversations.create(
        items=[{"role": "user", "content": "I am Cy"}]
    )
    [ttl_ms] = conversation_keys(redis_url, redis_prefix).values()
    assert TTL_S * 1000 < ttl_ms <= TTL_S * 1000 + 1000  # its TTL (and a second of slack)
    answer = await sdks[1].responses.create(
        model="a", input="who am I?", conversation=conversation.id
    )
    assert answer.output_text == "Echo: who am I?"
    record = fake.state.last(path="/chat/completions")
    assert record is not None and len(record.body["messages"]) == 2  # the history came along
    assert await contents(sdks[0], conversation.id) == ["I am Cy", "who am I?", answer.output_text]
    await sdks[0].conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        await sdks[1].conversations.retrieve(conversation.id)
    assert conversation_keys(redis_url, redis_prefix) == {}


async def test_changes_made_on_two_replicas_at_once_are_all_kept(
    sdks: list[openai.AsyncOpenAI],
) -> None:
    """Twenty additions and two responses, half through each replica, all started together:
    each reads the conversation before any has written (a read-then-write would keep one)."""
    conversation = await sdks[0].conversations.create(items=[{"role": "user", "content": "start"}])
    additions = [
        sdks[n % 2].conversations.items.create(
            conversation.id, items=[{"role": "user", "content": f"add {n}"}]
        )
        for n in range(20)
    ]
    await asyncio.gather(*additions)
    answers = await asyncio.gather(
        *(
            sdks[n].responses.create(model="a", input=f"ask {n}", conversation=conversation.id)
            for n in range(2)
        )
    )
    kept = await contents(sdks[1], conversation.id)
    assert kept[0] == "start"
    assert sorted(kept[1:21]) == sorted(f"add {n}" for n in range(20))
    expected = {f"ask {n}" for n in range(2)} | {answer.output_text for answer in answers}
    assert set(kept[21:]) == expected and len(kept) == 25
    for answer in answers:  # each response's input right before its output
        assert kept.index(answer.output_text) == kept.index(answer.output_text[len("Echo: ") :]) + 1


async def test_paging_goes_on_past_an_item_another_replica_deleted(
    sdks: list[openai.AsyncOpenAI],
) -> None:
    conversation = await sdks[0].conversations.create(
        items=[{"role": "user", "content": f"m{n}"} for n in range(4)]
    )
    page = await sdks[0].conversations.items.list(conversation.id, limit=2, order="asc")
    cursor = str(page.data[-1].id)
    await sdks[1].conversations.items.delete(cursor, conversation_id=conversation.id)
    rest: Any = await sdks[1].conversations.items.list(conversation.id, order="asc", after=cursor)
    assert [item.content[0].text for item in rest.data] == ["m2", "m3"]
