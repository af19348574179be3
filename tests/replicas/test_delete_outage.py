"""A delete during a Redis outage of what only Redis holds (a stored response, a conversation, a
file) is a 503 to try again, never a 404: the thing is there all along, and still there once
Redis is back, where the retried delete deletes it. What this replica stored on its own state
during the outage is deleted there, and a background response started during the outage runs
and is deleted as any other, neither saying in the log that something was not deleted (it
said so of every one, three times over: one warning per request during an outage)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import ResilientStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.background import settled
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.replicas.harness import replica_config, sdks_on
from tests.replicas.redis_fixtures import RedisProxy

MESSAGE: Any = {"type": "message", "role": "user", "content": "hi"}

Made = Callable[[openai.AsyncOpenAI], Awaitable[str]]
Op = Callable[[openai.AsyncOpenAI, str], Awaitable[object]]


async def _response(sdk: openai.AsyncOpenAI) -> str:
    return (await sdk.responses.create(model="a", input="keep me")).id


async def _conversation(sdk: openai.AsyncOpenAI) -> str:
    return (await sdk.conversations.create(items=[MESSAGE])).id


async def _file(sdk: openai.AsyncOpenAI) -> str:
    return (
        await sdk.files.create(file=("in.jsonl", jsonl(chat_line("l1", "a"))), purpose="batch")
    ).id


# What each kind is made, read and deleted with through the SDK.
KINDS: dict[str, tuple[Made, Op, Op]] = {
    "response": (
        _response,
        lambda s, i: s.responses.retrieve(i),
        lambda s, i: s.responses.delete(i),
    ),
    "conversation": (
        _conversation,
        lambda s, i: s.conversations.retrieve(i),
        lambda s, i: s.conversations.delete(i),
    ),
    "file": (_file, lambda s, i: s.files.retrieve(i), lambda s, i: s.files.delete(i)),
}


@pytest.fixture
async def replica(
    redis_proxy: RedisProxy,  # first: it outlives the router (it stops through it)
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_prefix: str,
) -> AsyncIterator[tuple[RouterHandle, openai.AsyncOpenAI]]:
    """A replica reaching Redis through the proxy, on a clock of the test's (its timers wait),
    and an SDK on it."""
    config = replica_config(fake.base_url, redis_proxy.url, redis_prefix)
    config["state"]["retry_interval_s"] = 3600  # tried again when the test says (`_back`)
    clock = ManualClock(time.time())
    one = await start_router(config, clock=clock)
    async with sdks_on(start_edge, one) as (sdk,):
        yield one, sdk


async def _back(redis_proxy: RedisProxy, replica: RouterHandle) -> None:
    """Redis answers again, and the replica is back on it (not a request's calls answered
    locally while another's probe is out)."""
    await redis_proxy.restore()
    store = replica.runtime.store
    assert isinstance(store, ResilientStateStore)
    store.retry_shared()
    await store.get_documents(["probe"])
    assert not store.degraded


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_delete_of_what_redis_holds_during_an_outage_is_a_503_not_a_404(
    kind: str,
    redis_proxy: RedisProxy,
    replica: tuple[RouterHandle, openai.AsyncOpenAI],
) -> None:
    make, read, delete = KINDS[kind]
    one, sdk = replica
    made = await make(sdk)
    await redis_proxy.cut()
    with pytest.raises(openai.InternalServerError) as refused:
        await delete(sdk, made)
    assert refused.value.status_code == 503
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["code"] == "state_unavailable", refused.value.body
    await _back(redis_proxy, one)
    await read(sdk, made)  # not deleted: there all along
    await delete(sdk, made)  # the retry deletes it
    with pytest.raises(openai.NotFoundError):
        await read(sdk, made)


def _said_not_deleted(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not deleted" in r.getMessage()]


@pytest.mark.parametrize("kind", ["conversation", "response"])  # a file is refused then
async def test_what_was_stored_during_an_outage_is_deleted_during_it(
    kind: str,
    redis_proxy: RedisProxy,
    replica: tuple[RouterHandle, openai.AsyncOpenAI],
    caplog: pytest.LogCaptureFixture,
) -> None:
    make, read, delete = KINDS[kind]
    one, sdk = replica
    await make(sdk)  # the connections are up
    await redis_proxy.cut()
    made = await make(sdk)  # kept on the replica's own state
    with caplog.at_level(logging.INFO):
        await delete(sdk, made)
    assert _said_not_deleted(caplog) == []  # it was
    with pytest.raises(openai.NotFoundError):
        await read(sdk, made)
    await _back(redis_proxy, one)
    with pytest.raises(openai.NotFoundError):
        await read(sdk, made)


async def test_a_background_response_started_during_an_outage_runs_and_is_deleted(
    redis_proxy: RedisProxy,
    replica: tuple[RouterHandle, openai.AsyncOpenAI],
    caplog: pytest.LogCaptureFixture,
) -> None:
    one, sdk = replica
    await _response(sdk)  # the connections are up
    await redis_proxy.cut()
    with caplog.at_level(logging.INFO):
        started = await sdk.responses.create(model="a", input="offline", background=True)
        final = await settled(sdk, started.id, one.server)
        assert (final.status, final.output_text) == ("completed", "Echo: offline")
        await sdk.responses.delete(started.id)
    assert _said_not_deleted(caplog) == []  # nothing was left (an earlier end mark: none)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(started.id)
    await _back(redis_proxy, one)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(started.id)


async def test_a_background_response_deleted_during_an_outage_is_a_503_and_kept(
    redis_proxy: RedisProxy,
    replica: tuple[RouterHandle, openai.AsyncOpenAI],
) -> None:
    one, sdk = replica
    started = await sdk.responses.create(model="a", input="online", background=True)
    await settled(sdk, started.id, one.server)
    await redis_proxy.cut()
    with pytest.raises(openai.InternalServerError) as refused:
        await sdk.responses.delete(started.id)
    assert refused.value.status_code == 503
    await _back(redis_proxy, one)
    assert (await sdk.responses.retrieve(started.id)).output_text == "Echo: online"
    await sdk.responses.delete(started.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(started.id)
