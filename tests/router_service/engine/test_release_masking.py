"""A key release that fails while the call is already failing never takes the place of the call's
own error: the caller sees the upstream's 400 or 429 (or its own deadline), and the failed
release is logged once, without the key (the lease expires by its TTL)."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients import RouterClient, details_from_rpc_error
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.release_failures import FAILED, logged_once
from tests.router_service.engine.test_afterwork import _params
from tests.router_service.server.test_media_stream_rpc import streamed

BAD = {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}


async def _refused(router: RouterHandle, stream: bool) -> grpc.aio.AioRpcError:
    """The error a Chat (or ChatStream) call ends with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if stream:
            call = router.stub.ChatStream(pb.ChatStreamRequest(params=_params()), timeout=5)
            [event async for event in call]
        else:
            await router.stub.Chat(pb.ChatRequest(params=_params()), timeout=5)
    return caught.value


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_failed_release_leaves_the_call_its_upstream_400(
    failing_router: RouterHandle,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    fake.state.set_scenario(Scenario(status=400, error_body={"error": BAD}))
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        error = await _refused(failing_router, stream)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error).upstream_status == 400
    logged_once(caplog, FAILED)


async def test_a_failed_release_leaves_a_unary_call_the_upstreams_429(
    failing_router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.state.set_scenario(Scenario(status=429, retry_after="7"))
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        error = await _refused(failing_router, stream=False)

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(error).upstream_status == 429
    # Every key was still tried (a release failing ends no walk), each failure logged once.
    assert fake.state.count() == 3
    failed = [r for r in caplog.records if FAILED in r.getMessage()]
    assert len(failed) == 3 and "sk-alpha" not in caplog.text


async def test_a_failed_release_after_a_mid_stream_failure_leaves_its_error_event_last(
    failing_router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.state.set_scenario(Scenario(reset_after_chunks=3))
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        call = failing_router.stub.ChatStream(pb.ChatStreamRequest(params=_params()), timeout=5)
        events = [event async for event in call]

    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "route" and "chunk" in kinds and kinds[-1] == "error"
    assert events[-1].error.code != "internal_error"  # the upstream's failure, not the store's
    assert await call.code() == grpc.StatusCode.OK  # as any stream that ended by an error event
    logged_once(caplog, FAILED)


async def test_a_failed_release_after_a_cut_media_stream_leaves_its_error_event_last(
    failing_router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=1))
    fields = {"prompt": "a fox", "n": 2, "stream": True}
    request = streamed(media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS, fields)
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        async with RouterClient(failing_router.server.address) as client:
            async with client.media_stream(request, timeout=10) as stream:
                messages = [message async for message in stream]  # a status error would raise

    assert [message.WhichOneof("event") for message in messages] == ["route", "chunk", "error"]
    assert messages[-1].error.code == "truncated"
    logged_once(caplog, FAILED)
