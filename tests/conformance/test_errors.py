"""Every error class, said in every provider's own words — as an HTTP error, wrapped in a 200,
inside a stream — lands on the same Outcome and gets the same reaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import chat, params, stream, streamed_text
from tests.conformance.profiles import Profile, conformance_config
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import advance_until_done

OK = routing_pb2.OUTCOME_OK
ScenarioFor = Callable[[Profile], Scenario]

# Failures of the deployment: the next candidate (the backup) answers.
FAILOVER: dict[str, ScenarioFor] = {
    "server_error": lambda p: Scenario.server_error(500),
    "overloaded": lambda p: Scenario.server_error(p.overloaded_status),
    "wrapped_200": lambda p: Scenario(wrapped_error={}),
    "wrapped_200_inner_503": lambda p: Scenario(
        wrapped_error={"code": 503, "message": "The service is currently unavailable."}
    ),
    "reset": lambda p: Scenario(reset_before_response=True),
    "truncated_body": lambda p: Scenario(truncate_after_chunks=0),
}
FAILOVER_OUTCOMES = {routing_pb2.OUTCOME_UPSTREAM_ERROR, routing_pb2.OUTCOME_CONNECT_FAILED}
# The same, before a stream's first chunk: invisible to the caller.
STREAM_FAILOVER: dict[str, ScenarioFor] = {
    "server_error": lambda p: Scenario.server_error(502),
    "overloaded": lambda p: Scenario.server_error(p.overloaded_status),
    "wrapped_first_event": lambda p: Scenario(wrapped_error={}, wrapped_error_at_chunk=1),
    "reset": lambda p: Scenario(reset_before_response=True),
}


def outcomes(route: routing_pb2.RouteInfo) -> list[tuple[str, int]]:
    return [(a.deployment, a.outcome) for a in route.attempts]


async def failed_chat(router: RouterHandle, model: str = "solo") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params(model))
    return caught.value


async def failed_stream(router: RouterHandle, model: str = "solo") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream(router, params(model))
    return caught.value


@pytest.mark.parametrize("case", FAILOVER)
async def test_upstream_failure_fails_over(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, case: str
) -> None:
    fake.state.set_scenario(FAILOVER[case](profile), model="m-up")

    response = await chat(router, params("chain"))

    assert response.completion.choices[0].message.text == "Echo: hello there"
    assert response.route.deployment == "backup/m-backup"
    failed, answered = outcomes(response.route)[:-1], outcomes(response.route)[-1]
    assert answered == ("backup/m-backup", OK)
    assert failed and {o for _, o in failed} <= FAILOVER_OUTCOMES


@pytest.mark.parametrize("case", STREAM_FAILOVER)
async def test_stream_failure_before_the_first_chunk_fails_over(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, case: str
) -> None:
    fake.state.set_scenario(STREAM_FAILOVER[case](profile), model="m-up")

    events = await stream(router, params("chain"))

    assert events[0].route.deployment == "backup/m-backup"
    assert streamed_text(events) == "Echo: hello there"
    route = events[-1].summary.route
    assert outcomes(route)[-1] == ("backup/m-backup", OK)
    assert {o for _, o in outcomes(route)[:-1]} <= FAILOVER_OUTCOMES
    assert await router.leases_held() == 0


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_rate_limited_with_retry_after(
    router: RouterHandle, fake: FakeUpstream, streaming: bool
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="7"), model="m-up")

    error = await (failed_stream(router) if streaming else failed_chat(router))

    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "RATE_LIMITED"
    assert details.retry_after_s == pytest.approx(7.0)
    assert sorted(r.key for r in fake.state.calls(model="m-up")) == ["k-1", "k-2"]


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_wrapped_rate_limit_is_a_rate_limit(
    router: RouterHandle, fake: FakeUpstream, streaming: bool
) -> None:
    wrapped = {"code": 429, "message": "Too many requests, slow down."}
    fake.state.set_scenario(Scenario(wrapped_error=wrapped, wrapped_error_at_chunk=1))

    error = await (failed_stream(router) if streaming else failed_chat(router))

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(error).reason == "RATE_LIMITED"
    assert sorted(r.key for r in fake.state.calls(model="m-up")) == ["k-1", "k-2"]


@pytest.mark.parametrize("wrapped", [False, True], ids=["http_error", "wrapped_200"])
async def test_invalid_key_moves_to_the_other_key(
    router: RouterHandle, fake: FakeUpstream, wrapped: bool
) -> None:
    scenario = (
        Scenario(wrapped_error={"code": 401, "message": "API key not valid."})
        if wrapped
        else Scenario.invalid_key(style="native")  # in the provider's own words
    )
    fake.state.set_scenario(scenario, key="k-1")

    responses = [await chat(router, params()) for _ in range(4)]

    assert {r.completion.choices[0].message.text for r in responses} == {"Echo: hello there"}
    attempts = [a.outcome for r in responses for a in r.route.attempts]
    assert attempts.count(routing_pb2.OUTCOME_AUTH_INVALID) == 1
    assert fake.state.count(key="k-1") == 1  # disabled after its first failure
    assert fake.state.count(key="k-2") == 4


async def test_callers_bad_request_is_returned_without_failover(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=400), model="m-up")  # the provider's own 400

    error = await failed_chat(router, "chain")

    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (details.reason, details.upstream_status) == ("BAD_REQUEST", 400)
    assert details.upstream_error and details.message
    assert_openai_shaped(details.upstream_error)
    assert fake.state.count(model="m-backup") == 0


def assert_openai_shaped(error: dict[str, object]) -> None:
    """What OpenAI clients read (`e.type`, `e.code`), whichever provider said it."""
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    assert "param" in error


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_content_filter_is_content_filtered(
    router: RouterHandle, fake: FakeUpstream, streaming: bool
) -> None:
    fake.state.set_scenario(Scenario(blocked="SAFETY"), model="m-up")

    error = await (failed_stream(router, "chain") if streaming else failed_chat(router, "chain"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = details_from_rpc_error(error)
    assert details.reason == "CONTENT_FILTERED"
    if not streaming:  # a stream's refusal is our own error, not the upstream's words
        assert details.upstream_error is not None
        assert_openai_shaped(details.upstream_error)
        assert details.upstream_error["code"] in ("content_filter", "content_policy_violation")
    assert fake.state.count(model="m-backup") == 0


# Faults after the stream's first content: the caller gets an error event, then the stream ends.
MID_STREAM = {
    "wrapped_error": (
        Scenario(chunks=6, wrapped_error={}, wrapped_error_at_chunk=5),
        routing_pb2.OUTCOME_UPSTREAM_ERROR,
    ),
    "truncated": (Scenario(chunks=6, truncate_after_chunks=4), routing_pb2.OUTCOME_TRUNCATED),
    "reset": (Scenario(chunks=6, reset_after_chunks=4), routing_pb2.OUTCOME_UPSTREAM_ERROR),
}


@pytest.mark.parametrize("case", MID_STREAM)
async def test_failure_mid_stream_is_an_error_event(
    router: RouterHandle, fake: FakeUpstream, case: str
) -> None:
    scenario, outcome = MID_STREAM[case]
    fake.state.set_scenario(scenario, model="m-up")

    events = await stream(router, params("chain"))

    assert events[0].route.deployment == "up/m-up"
    assert streamed_text(events).startswith("Echo:")
    assert events[-1].WhichOneof("event") == "error"
    assert events[-1].error.outcome == outcome
    assert events[-1].error.provider == "up"
    assert fake.state.count(model="m-backup") == 0
    assert await router.leases_held() == 0


async def test_stalls_before_and_during_a_stream(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile
) -> None:
    """Both windows run on the router's clock, moved only once the upstream is stalled: a
    healthy opening (a connection, a token fetch) is never timed by them, however loaded the
    machine."""
    clock = ManualClock(start=time.time())  # Vertex's token grant checks its assertion's dates
    config = conformance_config(fake, profile)
    config["providers"]["up"]["timeouts"] = {"first_chunk_s": 0.3}
    router = await start_router(config, clock=clock)

    fake.state.set_scenario(Scenario.stall(), model="m-up")
    streaming = asyncio.ensure_future(stream(router, params("chain")))
    await fake.state.wait_for(lambda: fake.state.calls(model="m-up") != [])
    clock.advance(0.31)  # the first-chunk window was open before the request was sent
    events = await streaming
    assert events[0].route.deployment == "backup/m-backup"
    assert outcomes(events[-1].summary.route) == [
        ("up/m-up", routing_pb2.OUTCOME_FIRST_CHUNK_TIMEOUT),
        ("backup/m-backup", OK),
    ]

    # `up` is cooling down now; `solo` has nothing else, so it is still tried (by a new
    # conversation: the first one's session skips `up`).
    config["providers"]["up"]["timeouts"] = {"stall_s": 0.3}
    await router.server.reload(SwitchboardConfig.model_validate(config))
    fake.state.set_scenario(Scenario(chunks=6, stall_after_chunks=4), model="m-up")
    before = len(fake.state.calls(model="m-up"))
    streaming = asyncio.ensure_future(stream(router, params("solo", text="another conversation")))

    def quiet() -> bool:  # after its 4th event (not the first call, stalled before its first)
        calls = fake.state.calls(model="m-up")
        return len(calls) == before + 1 and calls[-1].outcome == "stalled"

    await fake.state.wait_for(quiet)
    assert not streaming.done()
    # The upstream is stalled: any silence from now on is real.
    await advance_until_done(clock, 0.5, streaming, what="the stall window ended the stream")
    events = streaming.result()
    assert streamed_text(events).startswith("Echo:")
    assert events[-1].error.outcome == routing_pb2.OUTCOME_STALLED
    await fake.state.wait_for(lambda: fake.state.in_flight == 0)
    assert await router.leases_held() == 0
