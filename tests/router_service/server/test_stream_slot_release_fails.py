"""A client's stream slot whose release fails (the state store lost) as the stream ends: the
caller keeps what the stream told it (its whole answer, status OK; or the call's own error),
the failed release is logged once (the slot expires by its TTL)."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingReleases
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

A = "sk-client-a"
BAD = {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}
SLOT = "giving a stream slot back failed"


@pytest.fixture(params=RELEASE_ERRORS, ids=RELEASE_IDS)
async def router(
    request: pytest.FixtureRequest, fake: FakeUpstream, start_router: StartRouter
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("a", A, max_concurrent_streams=2))
    return await start_router(config, store=FailingReleases(request.param))


async def _slot_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """The slot is given back after the call's last message or status has left (the caller
    may see its end first): waited for, then told once."""

    async def logged() -> bool:
        return any(SLOT in r.getMessage() for r in caplog.records)

    await eventually(logged, what="the failed slot release logged")
    told = [r for r in caplog.records if SLOT in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
    assert A not in caplog.text


async def test_a_finished_stream_whose_slot_release_fails_ends_ok(
    router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        call = router.stub.ChatStream(
            pb.ChatStreamRequest(params=chat().params), metadata=bearer(A)
        )
        kinds = [event.WhichOneof("event") async for event in call]
        await _slot_logged_once(caplog)

    assert kinds[-1] == "summary" and "chunk" in kinds
    assert await call.code() == grpc.StatusCode.OK


async def test_a_failing_stream_whose_slot_release_fails_keeps_its_error(
    router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.state.set_scenario(Scenario(status=400, error_body={"error": BAD}))
    with caplog.at_level(logging.WARNING):
        call = router.stub.ChatStream(
            pb.ChatStreamRequest(params=chat().params), metadata=bearer(A)
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [event async for event in call]
        await _slot_logged_once(caplog)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(caught.value).upstream_status == 400
