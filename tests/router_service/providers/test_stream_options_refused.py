"""An OpenAI-format upstream that refuses `stream_options` (a 400 naming it) is learned: the
stream is asked again without them, in the same attempt, and the deployment's later streams
do not ask; they count the router's estimate, as `stream_usage: false` ones do."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat_stream

OLD_SERVER = Scenario(refuses_stream_options=True, content="one two three")


async def stream(router: RouterHandle, *, asked: bool = False) -> list[str]:
    """One ChatStream: its events' kinds, the summary's usage checked away."""
    request = chat_stream(text="hello")
    if asked:
        request.params.stream_options.include_usage = True
    kinds = []
    async for event in router.stub.ChatStream(request):
        kinds.append(event.WhichOneof("event"))
        if event.WhichOneof("event") == "summary":
            assert not event.summary.HasField("usage")  # none reported: the estimate counts
            assert event.summary.route.deployment == "alpha/model-a"
    return kinds


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    fake.state.set_scenario(OLD_SERVER)
    return await start_router(base_config(fake.base_url))


def sent(fake: FakeUpstream) -> list[tuple[str, object]]:
    return [(c.model, c.body.get("stream_options")) for c in fake.state.calls()]


async def test_a_refused_stream_options_is_retried_without_and_remembered(
    fake: FakeUpstream, router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        kinds = await stream(router)
        assert kinds[0] == "route" and kinds[-1] == "summary" and "chunk" in kinds
        # The same deployment, the same attempt: once with the router's ask, once without.
        assert sent(fake) == [("model-a", {"include_usage": True}), ("model-a", None)]
        await stream(router)
        assert sent(fake)[2:] == [("model-a", None)]  # learned: not asked again
    said = [r.getMessage() for r in caplog.records if "refuses stream_options" in r.message]
    assert len(said) == 1 and "alpha/model-a" in said[0]  # once, by deployment name
    assert "sk-alpha" not in said[0]


async def test_a_callers_own_stream_options_still_go_and_their_refusal_is_its_own(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream(router, asked=True)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stream_options" in (refused.value.details() or "")
    # Retried without the router's addition, still with the caller's: not the router's to learn.
    assert sent(fake) == [("model-a", {"include_usage": True})] * 2
    await stream(router)
    assert sent(fake)[2:] == [("model-a", {"include_usage": True}), ("model-a", None)]


async def test_the_admin_view_shows_what_was_learned(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    async def refused() -> set[str]:
        stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
        return {d.deployment for d in stats.deployments if d.stream_options_refused}

    assert await refused() == set()
    await stream(router)
    assert await refused() == {"alpha/model-a"}
