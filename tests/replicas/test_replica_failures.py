"""Replicas when things break (issue #9): a replica killed while holding leases, one stopped while
holding them, and Redis itself going away and coming back."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.state import ResilientStateStore
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.replicas.harness import ask, replica_config, start_on_reply_clock
from tests.replicas.redis_fixtures import PrivateRedis
from tests.router_service.server.processes import read_events, router_process

LEASE_TTL_S = 60.0


@pytest.fixture
def open_replica(fake: FakeUpstream, redis_url: str, redis_prefix: str) -> dict[str, Any]:
    """A replica's config on the suite's Redis, open to callers."""
    return replica_config(fake.base_url, redis_url, redis_prefix, auth={"open": True})


async def test_leases_of_a_killed_replica_free_themselves_after_their_ttl(
    fake: FakeUpstream, start_router: StartRouter, open_replica: dict[str, Any], tmp_path: Path
) -> None:
    config = open_replica
    config["providers"]["alpha"].update(keys=[{"key": "k1", "max_in_flight": 1}], queue_timeout_s=0)
    fake.state.set_scenario(Scenario(latency_ms=30_000), key="k1")

    # Replica X: its own process, killed with SIGKILL while its request holds k1's only slot.
    killed = {**config, "server": {"lease_ttl_s": LEASE_TTL_S}}
    async with router_process(killed, tmp_path) as replica:
        stuck = asyncio.ensure_future(replica.stub.Chat(ask()))
        await eventually(lambda: _is(fake.state.in_flight == 1), what="X calls upstream")
        replica.process.send_signal(signal.SIGKILL)
        await replica.process.wait()
        with pytest.raises(grpc.aio.AioRpcError):
            await stuck
    fake.state.clear_scenarios()

    config["server"] = {"port": 0, "lease_ttl_s": LEASE_TTL_S}
    clock = ManualClock(time.time())  # the survivor's: the TTL passes when the test says
    survivor = await start_router(config, clock=clock)
    assert await survivor.leases_held() == 1  # the dead replica's lease, in Redis
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await survivor.stub.Chat(ask())
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    clock.advance(LEASE_TTL_S - 10)  # (10 s: more than the survivor took to start)
    assert await survivor.leases_held() == 1  # not before its TTL
    clock.advance(10)
    assert await survivor.leases_held() == 0
    response = await survivor.stub.Chat(ask())
    assert response.completion.choices[0].message.text == "Echo: hi"


async def test_a_replica_stopped_mid_stream_gives_its_lease_back_at_once(
    fake: FakeUpstream, start_router: StartRouter, open_replica: dict[str, Any], tmp_path: Path
) -> None:
    survivor = await start_router(open_replica)
    fake.state.set_scenario(Scenario(stall_after_chunks=2))  # only the grace ends this stream
    stopping = {**open_replica, "server": {"shutdown_grace_s": 0.2}}
    async with router_process(stopping, tmp_path) as replica:
        call = await replica.stream_open("a")
        assert await survivor.leases_held() == 1  # the replica's lease, seen through Redis
        replica.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError):
            await read_events(call)
        assert await replica.exit_code() == 0
    assert await survivor.leases_held() == 0  # given back as it stopped, not after the TTL
    assert "Traceback" not in replica.log.read_text()


RETRY_S = 0.1


async def _is(value: bool) -> bool:
    return value


async def test_requests_flow_through_a_redis_outage_and_shared_state_resumes(
    fake: FakeUpstream, start_router: StartRouter, private_redis: PrivateRedis
) -> None:
    config = replica_config(fake.base_url, private_redis.url, "outage")
    # A stopped Redis refuses at once: no reply is waited out here. Replies and retries are on
    # the test's clock, so a loaded machine's slow reply never starts (or prolongs) an outage.
    config["state"].update(retry_interval_s=RETRY_S)
    clock = ManualClock(time.time())
    a = await start_on_reply_clock(start_router, config, clock)
    b = await start_on_reply_clock(start_router, config, clock)
    stores = [a.runtime.store, b.runtime.store]
    assert all(isinstance(s, ResilientStateStore) for s in stores)
    for replica in (a, b) * 5:
        await replica.stub.Chat(ask())

    await private_redis.stop()
    for replica in (a, b) * 10:
        response = await replica.stub.Chat(ask())
        assert response.completion.choices[0].message.text == "Echo: hi"
    for store in stores:
        assert isinstance(store, ResilientStateStore)
        assert store.degraded and store.fallback_count > 0 and store.outages == 1
        assert "unreachable" in store.detail()

    await private_redis.start()  # same port, empty

    async def both_back() -> bool:
        clock.advance(RETRY_S)  # each replica's next call tries Redis again
        for replica in (a, b):
            await replica.stub.Chat(ask())
        return not any(isinstance(s, ResilientStateStore) and s.degraded for s in stores)

    await eventually(both_back, what="both replicas back on Redis")

    # Shared again: a key disabled through A is left alone by B.
    await a.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(
            provider="alpha", fingerprint=fingerprint("k1"), enabled=False
        )
    )
    before = fake.state.count(key="k1")
    for _ in range(10):
        await b.stub.Chat(ask())
    assert fake.state.count(key="k1") == before
    await b.runtime.afterwork.drain()  # B's releases too: the slots are shared
    assert await a.leases_held() == 0 and await b.leases_held() == 0
