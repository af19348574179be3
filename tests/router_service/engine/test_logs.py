"""What the engine tells the operator's log: a deployment cooled down, once when its cooldown
begins (engine/_attempts.py), and a model that refuses calls with NO_CAPACITY, once when the
refusals begin and once when it serves again (engine/_executor.py); not a line per call."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config


def _chat(model: str) -> pb.ChatRequest:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return pb.ChatRequest(params=chat_pb2.ChatParams(model=model, messages=[message]))


def _lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def test_a_deployment_cooling_down_is_logged_once_per_cooldown(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router = await start_router(base_config(fake.base_url))
    # Every call is planned (alpha/model-a first) and held at the upstream before the first
    # fails (a latency could run out on a loaded machine before the last call is planned).
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    fake.state.hold()
    with caplog.at_level(logging.INFO, logger="switchboard.engine"):
        calls = asyncio.gather(*(router.stub.Chat(_chat("chain")) for _ in range(4)))
        await fake.state.wait_for(lambda: fake.state.held == 4, what="4 calls at model-a")
        fake.state.release()
        await calls
    assert fake.state.by_model["model-a"] >= 2  # several failures, each extending the cooldown
    assert _lines(caplog, "cooled down") == [
        "deployment alpha/model-a cooled down for 15s (UPSTREAM_ERROR, HTTP 502)"
    ]


async def test_no_capacity_is_logged_when_it_begins_and_when_it_ends(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = base_config(fake.base_url)
    config["models"]["solo"] = {"deployments": [{"provider": "beta", "model": "model-b"}]}
    router = await start_router(config)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="sk-beta-1")
    with pytest.raises(grpc.aio.AioRpcError):  # the only key fails: disabled
        await router.stub.Chat(_chat("solo"))
    with caplog.at_level(logging.INFO, logger="switchboard.engine"):
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await router.stub.Chat(_chat("solo"))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # every key disabled
        fake.state.clear_scenarios()
        pool = router.runtime.pools["beta"]
        await pool.set_enabled(pool.keys[0], True)
        await router.stub.Chat(_chat("solo"))
        await router.stub.Chat(_chat("solo"))
    assert _lines(caplog, "NO_CAPACITY") == [
        "`solo` refuses calls: NO_CAPACITY (Every key of every candidate deployment is disabled "
        "(invalid credentials or exhausted quota); they are probed and come back by themselves "
        "when they work.)",
        "`solo` serves again after 3 call(s) refused with NO_CAPACITY",
    ]
