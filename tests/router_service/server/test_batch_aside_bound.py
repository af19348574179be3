"""A batch line back from its cooldown wait, waiting for a slot of `batches.concurrency` again,
still counts among the lines waiting without one: else the line the batch sends next, finding
every deployment cooling, stepped aside too, the one back took the slot it gave back, and more
admitted lines waited unsent than the concurrency (repeatably: one more each time). Here the
line back from its wait was sent while its deployment cooled again, before the line that came
to wait holding the slot."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_batches_sdk import chat_line
from tests.helpers import eventually
from tests.router_service.engine.test_cooldown_wait_slot import WaitingClock
from tests.router_service.server.test_batch_cooldown_slot import _start
from tests.router_service.server.test_routing import AS_SERVICE, two_providers, with_route_client

pytestmark = pytest.mark.timeout(60)


def _line(text: str, user: str) -> dict[str, Any]:
    line = chat_line(text, model="chat", text=text)
    line["body"]["user"] = user
    return line


async def _fails(
    fake: FakeUpstream, router: RouterHandle, deployment: str, user: str, cool: str | None = "300"
) -> None:
    """`user`'s call to `deployment` answers 503 (Retry-After `cool` s: it cools that long,
    else 15 s) and bans `user` from its provider (600 s)."""
    params = chat_pb2.ChatParams(
        model=deployment, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="x")]
    )
    params.user = user
    fake.state.set_scenario(
        Scenario.server_error(503, retry_after=cool, times=1), model=deployment.split("/")[1]
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(pb.ChatRequest(params=params), metadata=AS_SERVICE, timeout=5)


async def _asleep(clock: WaitingClock, count: int) -> None:
    async def asleep() -> bool:
        return clock.sleeping == count

    await eventually(asleep, what=f"{count} line(s) waiting out a cooldown")


async def _banned_and_cooling(
    fake: FakeUpstream, start_router: StartRouter
) -> tuple[RouterHandle, WaitingClock]:
    """One batch slot; at 96 s: u1 banned from alpha (until 600), u3 from beta, beta cooling
    until 316, alpha until 396."""
    config = with_route_client(two_providers(fake.base_url, batches={"concurrency": 1}))
    for provider in ("alpha", "beta"):
        config["providers"][provider]["thread_protection"] = "provider-ban"
    clock = WaitingClock()
    router = await start_router(config, clock=clock)
    await _fails(fake, router, "alpha/model-a", "u1", None)  # u1 banned from alpha until 600
    await _fails(fake, router, "beta/model-b", "u3", None)  # u3 from beta
    clock.advance(16.0)  # their cooldowns over
    await _fails(fake, router, "beta/model-b", "u0")  # beta cools until 316
    clock.advance(80.0)
    await _fails(fake, router, "alpha/model-a", "u4")  # alpha until 396
    return router, clock


async def test_a_line_back_from_its_wait_keeps_its_place_aside_until_it_has_a_slot(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router, clock = await _banned_and_cooling(fake, start_router)
    before = clock.sleeping
    await _start(router, _line("one", "u1"), _line("two", "u3"), _line("three", "u1"))
    await _asleep(clock, before + 2)  # "one" aside (until 316), "two" holding the slot (396)

    clock.advance(221.0)  # "one" is back, waiting for the slot
    await _asleep(clock, before + 1)
    await _fails(fake, router, "beta/model-b", "u5")  # beta cools again, until 617
    clock.advance(80.0)  # "two" is answered; "three" waits for beta, holding the slot
    await fake.state.wait_for(lambda: fake.state.count(text="two"), what='"two" answered')
    await _asleep(clock, before + 1)
    clock.advance(300.0)
    assert await router.server.batch_jobs.settle(10) == 0
    sent = [r.body["messages"][-1]["content"] for r in fake.state.calls()]
    # Was "one" (sent to beta while it cooled), then "three"; both planned afresh at 697.
    assert [text for text in sent if text in ("one", "three")] == ["three", "one"]


async def test_a_line_back_from_its_wait_rechecks_the_cooldown(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Line "one" waits aside for beta; back, it waits for the slot "two" holds (waiting for
    alpha); beta cools again meanwhile: with the slot back, "one" waits that out too (aside
    again), rather than being sent to beta while it cools."""
    router, clock = await _banned_and_cooling(fake, start_router)
    before = clock.sleeping
    await _start(router, _line("one", "u1"), _line("two", "u3"))
    await _asleep(clock, before + 2)  # "one" aside (until 316), "two" holding the slot (396)

    clock.advance(221.0)  # "one" is back, waiting for the slot
    await _asleep(clock, before + 1)
    await _fails(fake, router, "beta/model-b", "u5")  # beta cools again, until 617
    clock.advance(80.0)  # "two" is answered, its slot "one"'s

    async def moved() -> bool:  # "one" waiting for beta once more, or (was) sent
        waits = fake.state.count(text="two") == 1 and clock.sleeping == before + 1
        return waits or fake.state.count(text="one") > 0

    await eventually(moved, what='"one" waiting again')
    assert fake.state.count(text="one") == 0  # was sent to beta while it cooled
    clock.advance(300.0)
    assert await router.server.batch_jobs.settle(10) == 0
    assert fake.state.count(text="one") == 1
