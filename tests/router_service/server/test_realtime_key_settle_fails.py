"""A Realtime session the upstream drops, whose key's tpm settlement then fails (the state
store lost): the caller is still told the drop (an `error` event, code `upstream_error`, then
close 1011), the drop is still reacted to (the deployment cooled: the next session goes to the
other), and the failed settlement is logged."""

from __future__ import annotations

import logging

import orjson
import pytest

from clients import RouterClient
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter
from tests.router_service.server.test_realtime_rpc import ASK, event, open_session, realtime_config

pytestmark = pytest.mark.timeout(30)


class FailingKeySettlements(MemoryStateStore):
    """Memory state whose corrections of a key's tpm window (a settlement) raise."""

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        if not resource.startswith("client:") and requests == 0:
            raise StoreUnavailableError("redis: connection lost")
        await super().add_tokens(resource, window, delta, requests, lease_id=lease_id)


async def test_a_dropped_session_whose_key_settlement_fails_is_told_its_drop(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = realtime_config(fake)
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "tpm": 1000}]
    router = await start_router(config, store=FailingKeySettlements())
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        async with RouterClient(router.server.address) as grpc_client:
            session, route = await open_session(grpc_client)
            assert route.deployment == "alpha/rt-a"
            await session.send(ASK)
            await session.send(event("response.create"))
            async for message in session:
                if '"response.done"' in message.event_json:
                    break
            await session.send(event("fake.close", code=1011))  # the upstream drops it
            rest = [message async for message in session]
            told = orjson.loads(rest[0].event_json)
            assert told["error"]["code"] == "upstream_error" and rest[-1].close.code == 1011
            _, route = await open_session(grpc_client)
    assert route.deployment == "beta/rt-b"  # the dropping deployment cooled
    assert "connection lost" in caplog.text
