"""A conversation created while the shared store does not answer (DESIGN.md §5: an outage is
answered from the replica's local state): the caller gets it, never a 503 an SDK would retry (a
retry would make a second conversation, the first left behind). Whether Redis is gone or holds
its replies back (the create's first read times out: its write goes to local state), the
conversation is answered and read back from that replica, and Redis holds no other. A write Redis
ran before its reply was lost: tests/router_service/responses/test_conversation_outage.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.sessions import client_document
from tests.conftest import StartRouter
from tests.helpers import advance_until_done
from tests.http_edge.harness import Edge
from tests.replicas.harness import replica_config, start_on_reply_clock
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_conversations import conversation_keys

MESSAGE: Any = {"type": "message", "role": "user", "content": "hi"}


def key_of(prefix: str, conversation_id: str) -> str:
    """The Redis key of an open-mode caller's conversation (`""`: its client)."""
    return f"{prefix}:doc:{client_document('conv', '', conversation_id)}"


@pytest.mark.parametrize("outage", ["unreachable", "replies held"])
async def test_a_conversation_created_in_a_store_outage_is_answered(
    outage: str,
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> None:
    config = replica_config(fake.base_url, redis_proxy.url, redis_prefix)
    # The replica's replies wait `socket_timeout_s` on its clock, which moves when the test says:
    # a held reply times out then, and none of the first create's does on a loaded machine.
    config["state"].update(retry_interval_s=3600, socket_timeout_s=1)
    clock = ManualClock(time.time())
    replica = await start_on_reply_clock(start_router, config, clock)
    edge = await start_edge(replica)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=2, timeout=10
    ) as sdk:
        first = await sdk.conversations.create(items=[MESSAGE])  # the connections are up
        before = conversation_keys(redis_url, redis_prefix)
        assert set(before) == {key_of(redis_prefix, first.id)}
        if outage == "unreachable":
            await redis_proxy.cut()
        else:  # Redis runs what it is sent; the replica hears nothing back
            redis_proxy.hold_replies()
        creating = asyncio.ensure_future(sdk.conversations.create(items=[MESSAGE]))
        # Heard of by its timeout only (a cut is refused at once): the clock passes it.
        await advance_until_done(clock, 1.0, creating, what="the create in the outage")
        made = await creating
        assert (await sdk.conversations.retrieve(made.id)).id == made.id
    await redis_proxy.restore()
    landed = set(conversation_keys(redis_url, redis_prefix)) - set(before)
    assert landed <= {key_of(redis_prefix, made.id)}  # none, or the one answered
