"""A call answered while settling its tokens fails (the state store lost): the caller has its
answer all the same (unary, or a whole stream with status OK), and the failed settlement is
logged once (the estimate stays counted)."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingGiveBacks
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

A = "sk-client-a"
SETTLING = "settling a call's tokens failed"


@pytest.fixture(params=RELEASE_ERRORS, ids=RELEASE_IDS)
async def router(
    request: pytest.FixtureRequest, fake: FakeUpstream, start_router: StartRouter
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("a", A, tpm=100_000))
    return await start_router(config, store=FailingGiveBacks(request.param))


def _settling_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    told = [r for r in caplog.records if SETTLING in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
    assert A not in caplog.text


async def test_a_unary_answer_whose_settlement_fails_is_answered(
    router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        answer = await router.stub.Chat(chat(), metadata=bearer(A), timeout=5)

    assert answer.completion.choices[0].message.text
    _settling_logged_once(caplog)


async def test_a_stream_whose_settlement_fails_ends_ok(
    router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        request = pb.ChatStreamRequest(params=chat().params)
        call = router.stub.ChatStream(request, metadata=bearer(A), timeout=5)
        kinds = [event.WhichOneof("event") async for event in call]

    assert kinds[-1] == "summary" and "chunk" in kinds
    assert await call.code() == grpc.StatusCode.OK
    _settling_logged_once(caplog)
