"""A Realtime session whose client settlement fails as it ends (the state store lost): the
caller is told its session's close as it would be (status OK), not the store's error, and the
failed settlement is logged (the session's tokens go uncounted, as a call's)."""

from __future__ import annotations

import logging

import pytest

from clients import RouterClient
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import client
from tests.router_service.server.test_realtime_rpc import (
    KEY,
    ask_then_close,
    open_session,
    realtime_config,
)
from tests.router_service.server.test_settle_fails import SETTLING

pytestmark = pytest.mark.timeout(30)


class FailingClientSettlements(MemoryStateStore):
    """Memory state whose corrections of a client's tpm window (a settlement) raise."""

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        if resource.startswith("client:") and requests == 0:
            raise StoreUnavailableError("redis: connection lost")
        await super().add_tokens(resource, window, delta, requests, lease_id=lease_id)


async def test_a_session_whose_settlement_fails_is_told_its_close(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caller = client("svc", KEY, tpm=1000)
    config = realtime_config(fake, auth={"clients": [caller]})
    router = await start_router(config, store=FailingClientSettlements())
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        async with RouterClient(router.server.address) as grpc_client:
            session, _ = await open_session(grpc_client)
            await ask_then_close(session)  # its close told, no error raised

    told = [r for r in caplog.records if SETTLING in r.getMessage()]
    assert len(told) == 1 and KEY not in caplog.text
