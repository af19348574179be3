"""A replica stopped with SIGTERM on shared state: what it held in Redis it gives back as it goes,
not when the leases' TTL runs out (router_service/server/_server.py `RouterServer.shutdown`)."""

from __future__ import annotations

import signal
from pathlib import Path

import grpc
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.replicas.harness import replica_config
from tests.router_service.server.processes import read_events, router_process

pytestmark = pytest.mark.timeout(60)


async def test_a_replica_stopped_mid_stream_gives_its_lease_back_to_redis(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix, auth={"open": True})
    survivor = await start_router(config)
    fake.state.set_scenario(Scenario(stall_after_chunks=2))  # only the grace ends this stream
    stopping = {**config, "server": {"shutdown_grace_s": 0.2}}
    async with router_process(stopping, tmp_path) as replica:
        call = await replica.stream_open("a")
        assert await survivor.leases_held() == 1  # the replica's lease, seen through Redis
        replica.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError):
            await read_events(call)
        assert await replica.exit_code() == 0
    assert await survivor.leases_held() == 0  # given back at once, not after lease_ttl_s (900)
    assert "Traceback" not in replica.log.read_text()
