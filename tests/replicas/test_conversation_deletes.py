"""Deleting a conversation's item on two router replicas on one Redis at the same moment: each
reads the item live before either writes, and one delete is written (a compare-and-swap of the
record read), the other told 404, as on one replica; the record keeps the id deleted once and
its TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import openai
import pytest
import redis

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge
from tests.replicas.harness import replica_config, sdks_on, two_replicas
from tests.replicas.redis_fixtures import keys_under

TTL_S = 3600


def reads_held_until(
    replica: RouterHandle, monkeypatch: pytest.MonkeyPatch, both: asyncio.Barrier
) -> None:
    """The replica's first read of a conversation waits, once read, until both replicas read
    one (a conversation's name begins "conv:"; a read after, a retry's, is not held)."""
    store = replica.runtime.store
    read = store.get_documents
    held_once: list[bool] = []

    async def held(names: Sequence[str]) -> list[bytes | None]:
        found = await read(names)
        if not held_once and any(name.startswith("conv:") for name in names):
            held_once.append(True)
            await asyncio.wait_for(both.wait(), 10)
        return found

    monkeypatch.setattr(store, "get_documents", held)


async def test_one_item_deleted_on_two_replicas_at_once_is_deleted_once(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix, conversations={"ttl_s": TTL_S})
    one, two = await two_replicas(start_router, config)
    async with sdks_on(start_edge, one, two) as sdks:
        conversation = await sdks[0].conversations.create(
            items=[{"role": "user", "content": "m0"}, {"role": "user", "content": "m1"}]
        )
        listed = await sdks[0].conversations.items.list(conversation.id, order="asc")
        first = str(listed.data[0].id)
        both = asyncio.Barrier(2)
        for replica in (one, two):
            reads_held_until(replica, monkeypatch, both)
        answers = await asyncio.gather(
            *(
                sdk.conversations.items.delete(first, conversation_id=conversation.id)
                for sdk in sdks
            ),
            return_exceptions=True,
        )
        refused = [a for a in answers if isinstance(a, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], openai.NotFoundError), answers
        left = await sdks[1].conversations.items.list(conversation.id)
        assert [item.id for item in left.data] == [listed.data[1].id]
    [(key, ttl_ms)] = [
        (k, t) for k, t in keys_under(redis_url, redis_prefix).items() if ":doc:conv:" in k
    ]
    assert 0 < ttl_ms <= TTL_S * 1000 + 1000  # still expiring as created
    raw = redis.Redis.from_url(redis_url).get(key)
    assert isinstance(raw, bytes)
    # Its id in its item and deleted once; what it said (its JSON) no longer kept.
    assert raw.count(first.encode()) == 2 and b'"m0"' not in raw and b'"m1"' in raw
