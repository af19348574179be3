"""Router replicas on one Redis: configs, a request, a batch made through a client, peak
concurrency from call records, two replicas on one clock (`replicas`: each behind an edge, with
an SDK), and their connections to Redis (to kill them)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
import redis

from clients import RouterClient
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import CallRecord, FakeUpstream
from router_service.keys import fingerprint
from router_service.state import RedisStateStore, ResilientStateStore, open_store
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge
from tests.replicas.redis_fixtures import redis_state


def replica_config(fake_url: str, redis_url: str, prefix: str, **sections: Any) -> dict[str, Any]:
    """One provider with two keys on the fake upstream, two groups, state on Redis."""
    config: dict[str, Any] = {
        "providers": {
            "alpha": {"base_url": fake_url, "keys": ["k1", "k2"]},
            "beta": {"base_url": fake_url, "keys": ["kb"]},
        },
        "models": {
            "a": {"deployments": [{"provider": "alpha", "model": "model-a"}]},
            "chain": {
                "deployments": [
                    {"provider": "alpha", "model": "model-a"},
                    {"provider": "beta", "model": "model-b"},
                ]
            },
        },
        "server": {"port": 0},
        # Tests of timeouts set their own (`config["state"].update(...)`).
        "state": redis_state(redis_url, prefix),
    }
    config.update(sections)
    return config


async def start_on_reply_clock(
    start_router: StartRouter, config: dict[str, Any], clock: ManualClock
) -> RouterHandle:
    """A replica whose Redis replies wait `state.socket_timeout_s` on `clock` (theirs is the
    event loop's otherwise): a reply held back times out when the test moves it that far, and
    no other does on a loaded machine."""
    settings = SwitchboardConfig.model_validate({"auth": {"open": True}, **config})
    store = await open_store(settings.state, clock, reply_clock=clock)
    return await start_router(settings, clock=clock, store=store)


def ask(model: str = "a", session: str = "", text: str = "hi") -> pb.ChatRequest:
    params = chat_pb2.ChatParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)]
    )
    return pb.ChatRequest(params=params, routing=routing_pb2.RoutingOptions(session_id=session))


async def batch_through(replica: RouterHandle, content: bytes, api_key: str | None = None) -> str:
    """The id of a chat batch of `content` (its input file's lines) made on `replica` through a
    RouterClient (as `api_key`'s client)."""
    async with RouterClient(replica.server.address, api_key=api_key) as calls:
        upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
        kept = (await calls.upload_file(upload, timeout=10)).file
        create = bpb.CreateBatchRequest(
            input_file_id=kept.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        return (await calls.create_batch(create, timeout=10)).batch.id


def peak_concurrency(records: list[CallRecord]) -> int:
    events = sorted(
        [(r.started_at, 1) for r in records] + [(r.ended_at or 0.0, -1) for r in records]
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


async def two_replicas(
    start_router: StartRouter, config: dict[str, Any], clock: ManualClock | None = None
) -> tuple[RouterHandle, RouterHandle]:
    """Two replicas of `config` on one ManualClock (now by default): time moves when told."""
    clock = clock or ManualClock(time.time())
    return await start_router(config, clock=clock), await start_router(config, clock=clock)


async def set_enabled(replica: RouterHandle, key: str, enabled: bool) -> None:
    """AdminService.SetKeyEnabled on one of provider alpha's keys."""
    request = admin_pb.SetKeyEnabledRequest(
        provider="alpha", fingerprint=fingerprint(key), enabled=enabled
    )
    await replica.admin.SetKeyEnabled(request)


def redis_store(replica: RouterHandle) -> RedisStateStore:
    """The replica's Redis store (behind its local fallback)."""
    store = replica.runtime.store
    assert isinstance(store, ResilientStateStore) and isinstance(store.shared, RedisStateStore)
    return store.shared


def redis_addresses(replica: RouterHandle) -> dict[str, list[str]]:
    """The replica's connections to Redis as Redis names them (`CLIENT KILL ADDR`): its pooled
    ones and its read cache's subscriber."""
    shared = redis_store(replica)
    pooled = [c for c in shared._client._slots if c is not None and c.broken is None]
    subscriber = shared.cache._subscriber if shared.cache is not None else None
    return {
        "pooled": [client_address(c) for c in pooled],
        "subscriber": [client_address(subscriber)] if subscriber is not None else [],
    }


def client_address(connection: Any) -> str:
    """One of our Redis connections as Redis names it (`CLIENT KILL ADDR`)."""
    host, port = connection._transport.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


def kill_redis_clients(redis_url: str, addresses: list[str]) -> None:
    """`CLIENT KILL` each: Redis drops the connection (and what it tracked for it)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for address in addresses:
            client.client_kill(address)
    finally:
        client.close()


Replicas = tuple[RouterHandle, RouterHandle, openai.AsyncOpenAI, openai.AsyncOpenAI]


@pytest.fixture
async def replicas(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[Replicas]:
    """Two replicas on one Redis, each behind an edge, and an SDK on each edge."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    one, two = await two_replicas(start_router, config)
    async with sdks_on(start_edge, one, two) as (first, second):
        yield one, two, first, second


@asynccontextmanager
async def sdks_on(
    start_edge: Callable[..., Awaitable[Edge]], *replicas: RouterHandle
) -> AsyncIterator[list[openai.AsyncOpenAI]]:
    """An SDK on an edge in front of each of `replicas` (closed after)."""
    sdks: list[openai.AsyncOpenAI] = []
    try:
        for replica in replicas:
            url = f"{(await start_edge(replica)).base_url}/v1"
            sdks.append(openai.AsyncOpenAI(base_url=url, api_key="sk-x", max_retries=0, timeout=10))
        yield sdks
    finally:
        for sdk in sdks:
            await sdk.close()


async def refused_for_the_outage(*reads: Callable[[], Awaitable[object]]) -> None:
    """Each of `reads` (an SDK's call) is refused with a 503 `state_unavailable`: what it reads
    is unknown on a replica that lost Redis, neither absent (a 404) nor none (an empty list)."""
    for read in reads:
        with pytest.raises(openai.InternalServerError) as refused:
            await read()
        assert refused.value.status_code == 503
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "state_unavailable", refused.value.body
