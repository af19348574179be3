"""`truncation: auto` on a deployment called on OpenAI's Responses API (`api: responses`), over a
real gRPC channel: the upstream is asked for its own `truncation: "auto"` and fits its model's
window itself (the fake upstream's `context_window`, in words, leaves the oldest items out as
OpenAI does); the router's cutting is left for a refusal that comes even so."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.outcomes import Outcome
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.server.test_truncation import AUTO, CONVERSATION, outcomes, reason


def on_responses(fake_url: str) -> dict[str, Any]:
    """`chain` on one deployment called on the Responses API."""
    deployment = {"provider": "alpha", "model": "model-a", "api": "responses"}
    return base_config(fake_url, models={"chain": {"deployments": [deployment]}})


async def started(start_router: StartRouter, fake: FakeUpstream) -> RouterHandle:
    return await start_router(on_responses(fake.base_url))


async def test_auto_is_asked_of_the_upstream_which_fits_its_window(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    router = await started(start_router, fake)
    answer = await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    assert answer.completion.choices[0].message.text == "Echo: and now"
    assert outcomes(answer.route) == [Outcome.OK]  # one call: no refusal to cut for
    assert answer.route.truncated_messages == 0  # none the router left out
    [call] = fake.state.calls(path="/responses")
    assert call.body["truncation"] == "auto"
    assert len(call.body["input"]) == 8  # sent whole: the upstream chose what to leave out
    assert answer.completion.usage.prompt_tokens <= 12  # what the model read


async def test_a_stream_asks_it_too(fake: FakeUpstream, start_router: StartRouter) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    router = await started(start_router, fake)
    request = pb.ChatStreamRequest(params=CONVERSATION, routing=AUTO)
    events = [event async for event in router.stub.ChatStream(request)]
    assert events[-1].WhichOneof("event") == "summary"
    [call] = fake.state.calls(path="/responses")
    assert call.body["truncation"] == "auto"


@pytest.mark.parametrize("mode", [None, routing_pb2.TRUNCATION_DISABLED])
async def test_without_auto_none_is_asked_and_the_refusal_is_the_callers(
    fake: FakeUpstream, start_router: StartRouter, mode: int | None
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    router = await started(start_router, fake)
    options = routing_pb2.RoutingOptions(truncation=mode)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=options))
    assert reason(refused.value) == "CONTEXT_TOO_LONG"
    [call] = fake.state.calls(path="/responses")
    assert "truncation" not in call.body


async def test_a_refusal_even_so_is_cut_by_the_router(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An upstream that refuses the input though asked to fit it (the fake's window smaller than
    the last item and the instructions: nothing it may leave out fits): the router's own
    retries follow, each asking for `truncation: "auto"` again, then the context error."""
    fake.state.set_scenario(Scenario(context_window=1))
    router = await started(start_router, fake)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    assert reason(refused.value) == "CONTEXT_TOO_LONG"
    calls = fake.state.calls(path="/responses")
    assert [len(call.body["input"]) for call in calls] == [8, 4, 2]
    assert {call.body["truncation"] for call in calls} == {"auto"}
