"""A Realtime session the upstream drops after answering: the tokens of the `response.done`
events it sent before count in its upstream key's tpm, as those of a session that ends well do
(the drop is recorded and reacted to as an upstream failure besides)."""

from __future__ import annotations

import orjson
import pytest

from clients import RouterClient, RouterError
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.server.test_realtime_rpc import ASK, event, open_session, realtime_config

pytestmark = pytest.mark.timeout(30)


async def test_a_dropped_sessions_tokens_count_in_its_keys_tpm(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_800_000_000.0)  # the start of a minute
    config = realtime_config(fake)
    config["models"]["voice"]["deployments"] = [
        {"provider": "alpha", "model": "rt-a", "realtime": True}
    ]
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "tpm": 10}]
    config["providers"]["alpha"]["queue_timeout_s"] = 0  # refused at once, not queued
    router = await start_router(config, clock=clock)
    async with RouterClient(router.server.address) as grpc_client:
        session, _ = await open_session(grpc_client)
        await session.send(ASK)
        await session.send(event("response.create"))
        async for message in session:
            if '"response.done"' in message.event_json:  # 13 tokens: past the key's 10
                break
        await session.send(event("fake.close", code=1011))  # the upstream drops it
        rest = [message async for message in session]
        told = orjson.loads(rest[0].event_json)
        assert told["error"]["code"] == "upstream_error" and rest[-1].close.code == 1011
        clock.advance(16)  # past the deployment's transient cooldown, in the same minute
        with pytest.raises(RouterError) as refused:
            await open_session(grpc_client)
    assert refused.value.details.reason == "NO_CAPACITY"
    assert len(fake.state.calls(path="/v1/realtime")) == 1  # the spent key: not sent to
