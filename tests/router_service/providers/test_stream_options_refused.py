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


# A FastAPI-style server's 400 for a request its validators refuse, for a reason of its own,
# quotes the whole request (pydantic's `input`): the router's `stream_options` among it.
QUOTING = {
    "object": "error",
    "message": "1 validation error: {'type': 'value_error', 'loc': ('body',), 'msg': 'Value "
    "error, When using `tool_choice`, `tools` must be set.', 'input': {'model': 'model-a', "
    "'stream': True, 'stream_options': {'include_usage': True}, 'tool_choice': 'required'}}",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}


async def test_a_400_that_only_quotes_the_stream_options_teaches_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(status=400, error_body=QUOTING))
    router = await start_router(base_config(fake.base_url))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream(router)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The same 400 without them: not theirs. The deployment is still asked for its usage.
    assert sent(fake) == [("model-a", {"include_usage": True}), ("model-a", None)]
    fake.state.set_scenario(Scenario())
    async for _ in router.stub.ChatStream(chat_stream(text="hello")):
        pass
    assert sent(fake)[2:] == [("model-a", {"include_usage": True})]
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    assert not any(d.stream_options_refused for d in stats.deployments)
