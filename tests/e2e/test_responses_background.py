"""Background responses end to end: the official `openai` SDK's `responses.create(...,
background=True)`, `responses.retrieve` and `responses.cancel` → the edge → the router, which
runs the call in a task of its own and keeps the Response's status in its store; the fake
upstream answers (or holds its answer, with a long latency, while a test looks at the job)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.responses import STOPPED_MESSAGE
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.background import HELD, held, settled
from tests.e2e.stream_harness import StartEdge

Stack = tuple[RouterHandle, openai.AsyncOpenAI]
OpenStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def open_stack(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[OpenStack]:
    sdks: list[openai.AsyncOpenAI] = []

    async def open_(clock: ManualClock | None = None, **responses: Any) -> Stack:
        config = base_config(fake.base_url, responses=responses)
        router = await start_router(config, clock=clock or ManualClock())
        edge = await start_edge(router)
        sdk = openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        )
        sdks.append(sdk)
        return router, sdk

    yield open_
    for sdk in sdks:
        await sdk.close()


async def test_a_background_response_is_queued_then_completed_as_in_the_foreground(
    open_stack: OpenStack,
) -> None:
    router, sdk = await open_stack()
    foreground = await sdk.responses.create(model="chain", input="hello", instructions="Brief.")
    started = await sdk.responses.create(
        model="chain", input="hello", instructions="Brief.", background=True
    )
    assert (started.status, started.background, started.output) == ("queued", True, [])
    assert started.to_dict()["store"] is True and started.instructions == "Brief."
    final = await settled(sdk, started.id, router.server)
    assert final.status == "completed" and final.background is True
    assert final.output_text == foreground.output_text == "Echo: hello"
    assert final.usage is not None and foreground.usage is not None
    assert final.usage.total_tokens == foreground.usage.total_tokens
    items = await sdk.responses.input_items.list(started.id)
    assert [item.type for item in items.data] == ["message"]
    follow = await sdk.responses.create(model="chain", input="more", previous_response_id=final.id)
    assert follow.output_text == "Echo: more"


async def test_a_running_response_reads_in_progress_and_cancel_stops_its_upstream_call(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    with TelemetryCapture(tracing=False) as captured:
        router, sdk = await open_stack()
        fake.state.set_scenario(HELD)
        started = await sdk.responses.create(model="chain", input="think long", background=True)
        await held(fake)
        running = await sdk.responses.retrieve(started.id)
        assert _jobs(captured, "switchboard.responses.background.running") == {(): 1}
        await _cancel_while_running(router, sdk, fake, started.id)
        ended = _jobs(captured, "switchboard.responses.background.ended")
        assert _jobs(captured, "switchboard.responses.background.running") == {(): 0}
    assert (running.status, running.output) == ("in_progress", [])
    assert ended == {(("status", "cancelled"),): 1}  # what operators see of it


def _jobs(captured: TelemetryCapture, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    return {tuple(sorted(labels.items())): point.value for labels, point in captured.points(name)}


async def _cancel_while_running(
    router: RouterHandle, sdk: openai.AsyncOpenAI, fake: FakeUpstream, response_id: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:  # nothing to continue from yet
        await sdk.responses.create(model="chain", input="x", previous_response_id=response_id)
    assert caught.value.param == "previous_response_id"
    cancelled = await sdk.responses.cancel(response_id)
    assert (cancelled.id, cancelled.status, cancelled.output) == (response_id, "cancelled", [])
    assert fake.state.in_flight == 0  # the upstream call was closed before the cancel answered
    assert await router.leases_held() == 0
    assert (await sdk.responses.retrieve(response_id)).status == "cancelled"
    assert (await sdk.responses.cancel(response_id)).status == "cancelled"  # again: the same
    assert router.server.jobs.running == 0


async def test_cancelling_a_finished_or_foreground_response_is_a_400(
    open_stack: OpenStack,
) -> None:
    router, sdk = await open_stack()
    started = await sdk.responses.create(model="chain", input="hi", background=True)
    await settled(sdk, started.id, router.server)
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.cancel(started.id)
    assert "Cannot cancel a completed response" in caught.value.message
    foreground = await sdk.responses.create(model="chain", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.cancel(foreground.id)
    assert "background" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.cancel("resp_unknown")


async def test_an_upstream_failure_is_a_failed_response_with_its_error(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    router, sdk = await open_stack()
    fake.state.set_scenario(Scenario.server_error(status=503))
    started = await sdk.responses.create(model="chain", input="hi", background=True)
    final = await settled(sdk, started.id, router.server)
    assert final.status == "failed" and final.output == []
    assert final.error is not None and final.error.code == "server_error"
    assert final.error.message


async def test_a_job_past_its_time_limit_is_failed_saying_so(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    # A limit no wall-clock wait reaches within the test: only the router's clock moved past it
    # ends the job (asyncio's own timeout would leave it held until `settled` gives up).
    router, sdk = await open_stack(background_timeout_s=600)
    fake.state.set_scenario(HELD)
    started = await sdk.responses.create(model="chain", input="hi", background=True)
    await held(fake)
    clock = router.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(600.0)  # the time limit is on the router's clock
    final = await settled(sdk, started.id, router.server)
    assert final.status == "failed" and final.error is not None
    assert "time limit of 600 s" in final.error.message
    await fake.state.wait_idle()
    assert await router.leases_held() == 0


async def test_background_without_store_is_a_400(fake: FakeUpstream, open_stack: OpenStack) -> None:
    _, sdk = await open_stack()
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input="hi", background=True, store=False)
    assert caught.value.param == "store"
    assert fake.state.count() == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unknown_model_is_a_404_at_once_as_in_the_foreground(
    fake: FakeUpstream, open_stack: OpenStack, stream: bool
) -> None:
    router, sdk = await open_stack(max_background_per_client=1)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.responses.create(model="nope", input="hi", background=True, stream=stream)
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    assert router.server.jobs.running == 0  # no job queued, none holding the client's one place
    assert fake.state.count() == 0


async def test_a_client_past_its_cap_of_running_jobs_gets_a_429(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    router, sdk = await open_stack(max_background_per_client=1)
    fake.state.set_scenario(HELD)
    first = await sdk.responses.create(model="chain", input="one", background=True)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.responses.create(model="chain", input="two", background=True)
    assert "max_background_per_client" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "5"
    await sdk.responses.cancel(first.id)
    fake.state.set_scenario(Scenario())
    third = await sdk.responses.create(model="chain", input="three", background=True)
    assert (await settled(sdk, third.id, router.server)).output_text == "Echo: three"


async def test_a_stopping_router_writes_its_unfinished_jobs_failed(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    router, sdk = await open_stack()
    fake.state.set_scenario(HELD)
    started = await sdk.responses.create(model="chain", input="hi", background=True)
    await held(fake)
    await router.server.shutdown(grace=0.05)
    assert fake.state.in_flight == 0 and await router.leases_held() == 0
    (stored,) = await router.runtime.responses.load("", [started.id])
    assert stored.background_status == "failed"
    assert STOPPED_MESSAGE in stored.response_json


async def test_a_job_whose_replica_stopped_beating_reads_failed(open_stack: OpenStack) -> None:
    clock = ManualClock()
    router, sdk = await open_stack(clock=clock, background_heartbeat_s=30)
    # What a crashed replica leaves: an in-progress response no one renews the heartbeat of.
    orphan = pb.StoredResponse(
        id="resp_0123abcd",
        response_json='{"id": "resp_0123abcd", "object": "response", "status": "in_progress",'
        ' "created_at": 1, "model": "chain", "output": [], "background": true}',
        background_status="in_progress",
    )
    await router.runtime.background.begin("", orphan)
    assert (await sdk.responses.retrieve(orphan.id)).status == "in_progress"
    clock.advance(31)
    failed = await sdk.responses.retrieve(orphan.id)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.message == STOPPED_MESSAGE


async def test_a_running_response_deleted_stops_and_stays_deleted(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    router, sdk = await open_stack()
    fake.state.set_scenario(HELD)
    started = await sdk.responses.create(model="chain", input="hi", background=True)
    await held(fake)
    await sdk.responses.delete(started.id)
    assert fake.state.in_flight == 0 and await router.leases_held() == 0
    assert router.server.jobs.running == 0
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(started.id)


async def test_a_stopping_replica_refuses_a_start_as_worth_a_retry(open_stack: OpenStack) -> None:
    """A replica that began to stop starts no more background responses: another one takes
    the SDK's retry (`x-should-retry: true`), as the refusal itself says ("start it again")."""
    router, sdk = await open_stack()
    router.server.jobs.close()  # what a stop does first
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.responses.create(model="chain", input="hello", background=True)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "true"


async def test_a_response_running_longer_than_store_ttl_s_is_still_polled_and_cancelled(
    fake: FakeUpstream, open_stack: OpenStack
) -> None:
    """A run may last `background_timeout_s`, longer than a stored response is kept: its
    document must outlive the run (it was kept `store_ttl_s` from its start, so a long run read
    404 to pollers, and could be neither cancelled nor deleted while it ran on, paid for)."""
    clock = ManualClock()
    router, sdk = await open_stack(clock=clock, store_ttl_s=60, background_heartbeat_s=600)
    fake.state.set_scenario(HELD)
    started = await sdk.responses.create(model="chain", input="think long", background=True)
    await held(fake)
    clock.advance(61)  # past store_ttl_s, well within background_timeout_s (3600 s)
    assert (await sdk.responses.retrieve(started.id)).status == "in_progress"
    assert (await sdk.responses.cancel(started.id)).status == "cancelled"
    assert fake.state.in_flight == 0 and router.server.jobs.running == 0
    clock.advance(59)  # ended: kept store_ttl_s from its end, as any stored response
    assert (await sdk.responses.retrieve(started.id)).status == "cancelled"
    clock.advance(2)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(started.id)
