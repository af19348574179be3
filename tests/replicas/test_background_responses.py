"""A background response started through one router replica is polled and cancelled through
another: its Response, end mark and heartbeat live on the shared Redis; the replica running it
reads its jobs' cancel marks every second and stops the upstream call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import openai
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server._background import CHECK_S
from tests.conftest import StartRouter
from tests.e2e.background import held, jobs_ended, settled
from tests.http_edge.harness import Edge
from tests.replicas.harness import Replicas, replica_config, sdks_on, two_replicas
from tests.router_service.responses.test_background_rpcs import start_request


async def test_a_response_started_on_one_replica_is_polled_on_another(
    replicas: Replicas,
) -> None:
    one, _, first, second = replicas
    started = await first.responses.create(model="a", input="far away", background=True)
    final = await settled(second, started.id, one.server)  # run by one, read on the other
    assert (final.status, final.output_text) == ("completed", "Echo: far away")


async def test_a_cancel_on_another_replica_stops_the_running_one_within_its_check(
    fake: FakeUpstream, replicas: Replicas
) -> None:
    one, two, first, second = replicas
    fake.state.set_scenario(Scenario(latency_ms=60_000))
    started = await first.responses.create(model="a", input="long", background=True)
    await held(fake)
    assert (await second.responses.retrieve(started.id)).status == "in_progress"
    cancelled = await second.responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    assert (await first.responses.retrieve(started.id)).status == "cancelled"
    # Replica one reads the mark within CHECK_S and closes the upstream call and its lease.
    await fake.state.wait_idle(timeout=CHECK_S + 4)
    assert await one.leases_held() == 0 and await two.leases_held() == 0
    await jobs_ended(one.server)
    assert (await first.responses.retrieve(started.id)).status == "cancelled"
    with pytest.raises(openai.BadRequestError):  # cancelled is final: nothing to continue
        await first.responses.create(model="a", input="x", previous_response_id=started.id)


async def test_a_response_deleted_on_another_replica_as_its_answer_is_written_stays_deleted(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = await two_replicas(
        start_router, replica_config(fake.base_url, redis_url, redis_prefix)
    )
    writing, release = asyncio.Event(), asyncio.Event()
    write = one.runtime.background.write

    async def held_write(client: str, document: pb.StoredResponse) -> bool:
        if document.background_status == "completed":  # its end mark `done` is written
            writing.set()
            await release.wait()
        return await write(client, document)

    monkeypatch.setattr(one.runtime.background, "write", held_write)
    await one.stub.StartBackgroundResponse(start_request("resp_x1"))
    await writing.wait()
    assert (await two.stub.DeleteResponse(pb.DeleteResponseRequest(id="resp_x1"))).deleted
    release.set()
    await jobs_ended(one.server)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await two.stub.LoadResponses(pb.LoadResponsesRequest(ids=["resp_x1"]))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_stream_started_on_one_replica_is_resumed_live_on_another(
    fake: FakeUpstream, replicas: Replicas
) -> None:
    """The events are in Redis, and the follower on the other replica is woken by the runner's
    landings on the shared channel (no polling: it would wait a third of the heartbeat)."""
    one, _, first, second = replicas
    fake.state.hold()
    stream = await first.responses.create(model="a", input="hop", background=True, stream=True)
    head: list[Any] = []
    async for event in stream:
        head.append(event)
        if event.type == "response.in_progress":
            break
    await stream.close()
    await held(fake)
    resumed = await second.responses.retrieve(head[0].response.id, stream=True, starting_after=1)
    rest: list[Any] = [await anext(resumed)]  # replayed from Redis (200 waits for an event)
    fake.state.release()  # the rest is live
    rest += [event async for event in resumed]
    assert [e.sequence_number for e in rest] == list(range(2, 2 + len(rest)))
    assert rest[-1].type == "response.completed"
    assert rest[-1].response.output_text == "Echo: hop"
    await jobs_ended(one.server)


async def test_a_response_running_past_store_ttl_s_is_polled_and_cancelled_on_another(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> None:
    """On Redis too a running response outlives `store_ttl_s` (its document was kept that long
    from its start: the other replica read 404, and could not cancel it)."""
    responses = {"store_ttl_s": 60, "background_heartbeat_s": 600}
    config = replica_config(fake.base_url, redis_url, redis_prefix, responses=responses)
    clock = ManualClock(time.time())
    one, two = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario(latency_ms=60_000))
    async with sdks_on(start_edge, one, two) as (first, second):
        started = await first.responses.create(model="a", input="long", background=True)
        await held(fake)
        clock.advance(61)  # past store_ttl_s, within background_timeout_s
        assert (await second.responses.retrieve(started.id)).status == "in_progress"
        assert (await second.responses.cancel(started.id)).status == "cancelled"
        await fake.state.wait_idle(timeout=CHECK_S + 4)  # replica one read the mark
        await jobs_ended(one.server)
        assert (await first.responses.retrieve(started.id)).status == "cancelled"
