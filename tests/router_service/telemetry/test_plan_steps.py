"""Which step of the routing plan each upstream attempt was: the plan is the request span's
`switchboard.route.plan` event (its `switchboard.route.candidates`, in the order they are tried),
and each attempt's span, a child of that span, says its place there
(`switchboard.route.plan_step`, from 1). Before, a trace told the attempts only by their count
(`switchboard.attempt.index`): a same-provider key retry and a fallback looked alike."""

from __future__ import annotations

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.telemetry.spans import attrs, ended, events
from tests.router_service.telemetry.test_router_spans import SERVER_CHAT, SERVER_STREAM, params

pytestmark = pytest.mark.timeout(30)
STEP = "switchboard.route.plan_step"


async def test_each_attempt_says_its_step_of_the_plan(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """alpha's first key is rate limited (its second key is asked: the same step), then alpha
    fails (the next step, beta, answers)."""
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.rate_limited(), key="sk-alpha-1")
    fake.state.set_scenario(Scenario.server_error(502), key="sk-alpha-2")

    response = await router.stub.Chat(pb.ChatRequest(params=params()))
    assert response.route.deployment == "beta/model-b"

    trace = await ended(captured, SERVER_CHAT)
    request = trace.one(SERVER_CHAT)
    plan = events(request)["switchboard.route.plan"]["switchboard.route.candidates"]
    attempts = trace.children(request)
    assert [attrs(a)["switchboard.attempt.index"] for a in attempts] == [1, 2, 3]
    steps = [attrs(a)[STEP] for a in attempts]
    assert steps == [1, 1, 2]
    assert [plan[step - 1] for step in steps] == [
        attrs(a)["switchboard.deployment"] for a in attempts
    ]


async def test_a_stream_attempt_says_its_step_too(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(503), model="model-a")

    request = pb.ChatStreamRequest(params=params())
    async for _ in router.stub.ChatStream(request):
        pass

    trace = await ended(captured, SERVER_STREAM)
    attempts = trace.children(trace.one(SERVER_STREAM))
    assert [(attrs(a)["switchboard.deployment"], attrs(a)[STEP]) for a in attempts] == [
        ("alpha/model-a", 1),
        ("beta/model-b", 2),
    ]
