"""Background responses back from a cooldown wait queue for their client's places
(`responses.max_background_per_client`): a place given back wakes the oldest waiter at once,
on the router's clock (it read the store every second, `clock.sleep(1)`, and waited for the
clock to move), a start yields the place to an older waiter (on another replica too), and one
cancelled while it queues leaves nothing behind (its ticket would refuse every start)."""

from __future__ import annotations

import copy
import time
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server._job_places import POLL_S, TICKET_TTL_S
from router_service.sessions import client_scoped
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_state, redis_url, state_section
from tests.router_service.engine.test_cooldown_wait_slot import WaitingClock
from tests.router_service.responses.test_background_cooldown_aside import (
    _asleep,
    _no_marks,
    _start,
    _status,
)
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    ask,
    two_providers,
    with_route_client,
)

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

_SCOPED = client_scoped("svc", "")


def _config(fake: FakeUpstream, state: dict[str, Any]) -> dict[str, Any]:
    """One background response a client (its heartbeat outlasts the clock's jumps)."""
    config = with_route_client(two_providers(fake.base_url, state=state))
    config["responses"] = {"max_background_per_client": 1, "background_heartbeat_s": 1000}
    return config


def _clock() -> WaitingClock:
    clock = WaitingClock()
    clock.advance(time.time() - clock.now())  # Redis's own expiries run on the wall clock
    return clock


async def _cooled(fake: FakeUpstream, router: RouterHandle) -> None:
    """model-b's next call answered 503 with `Retry-After: 300`: it cools down for 300 s."""
    fake.state.set_scenario(Scenario.server_error(503, retry_after="300", times=1), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask("beta/model-b"), metadata=AS_SERVICE, timeout=5)


async def _in_line(router: RouterHandle, count: int, what: str) -> None:
    """Until `count` of the client's responses queue for a place."""

    async def queued() -> bool:
        return len(await router.runtime.store.members("bg-queue:" + _SCOPED)) == count

    await eventually(queued, what=what)


async def _queued(
    fake: FakeUpstream, router: RouterHandle, clock: WaitingClock, stream: bool = False
) -> None:
    """resp_one (`stream`ed or not) waits out model-b's 300 s cooldown aside; resp_two
    (model-a) takes the place and is held upstream; the cooldown over, resp_one queues."""
    await _cooled(fake, router)
    await _start(router, "resp_one", "beta/model-b", stream=stream)
    await _asleep(clock, 1)
    fake.state.hold()
    await _start(router, "resp_two", "alpha/model-a")
    await fake.state.wait_for(lambda: fake.state.held == 1)
    clock.advance(300.0)
    await _asleep(clock, 0)
    await _in_line(router, 1, "resp_one queued for a place")


async def _refused(router: RouterHandle, response_id: str) -> str:
    """The 429's message."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _start(router, response_id, "alpha/model-a")
    assert details_from_rpc_error(refused.value).reason == "BACKGROUND_LIMIT"
    return str(refused.value.details())


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "streamed"])
async def test_a_place_given_back_wakes_the_waiter_without_the_clock_moving(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any], stream: bool
) -> None:
    clock = _clock()
    router = await start_router(_config(fake, state_section), clock=clock)
    await _queued(fake, router, clock, stream)
    await _refused(router, "resp_early")  # no place free: the client is at its cap
    moved = clock.monotonic()
    fake.state.release()  # resp_two answers: its place goes to resp_one at once

    async def one_answered() -> bool:
        return await _status(router, "resp_one") == "completed"

    await eventually(one_answered, what="resp_one answered in the place given back")
    assert clock.monotonic() == moved  # no poll's interval went by
    assert await _status(router, "resp_two") == "completed"
    assert await router.server.jobs.settle(10) == 0
    await _no_marks(router)
    assert await router.runtime.store.members("bg-queue:" + _SCOPED) == {}


async def test_a_response_cancelled_while_queued_leaves_nothing_behind(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    clock = _clock()
    router = await start_router(_config(fake, state_section), clock=clock)
    await _queued(fake, router, clock)
    await router.stub.CancelResponse(pb.CancelResponseRequest(id="resp_one"), metadata=AS_SERVICE)
    assert await _status(router, "resp_one") == "cancelled"
    assert await router.runtime.store.members("bg-queue:" + _SCOPED) == {}
    assert await router.runtime.store.members("bg-aside:" + _SCOPED) == {}
    fake.state.release()
    assert await router.server.jobs.settle(10) == 0
    await _no_marks(router)
    await _start(router, "resp_three", "alpha/model-a")  # no ticket left to yield to
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_three") == "completed"
    await _no_marks(router)


async def test_a_start_on_another_replica_yields_the_place_to_the_older_waiter(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """resp_one queues on replica `one`; resp_two's place is given back on `two`, which has no
    waiter to wake: a start there is refused (the place is resp_one's), and resp_one takes it
    at its next read, `POLL_S` on."""
    clock = _clock()
    config = _config(fake, redis_state(redis_url, redis_prefix))
    one = await start_router(config, clock=clock)
    two = await start_router(config, clock=clock)
    await _cooled(fake, one)
    await _start(one, "resp_one", "beta/model-b")
    await _asleep(clock, 1)
    fake.state.hold()
    await _start(two, "resp_two", "alpha/model-a")
    await fake.state.wait_for(lambda: fake.state.held == 1)
    clock.advance(300.0)
    await _in_line(one, 1, "resp_one queued for a place")
    fake.state.release()
    assert await two.server.jobs.settle(10) == 0
    assert await two.runtime.store.members("bg-jobs:" + _SCOPED) == {}  # free, and owed
    # Said as it is: it runs none (it said it ran 1 already), its free place is owed.
    message = await _refused(two, "resp_newcomer")
    assert "runs 1 background responses already" not in message
    assert "by those it runs and 1 of its responses back from a cooldown wait" in message
    assert "responses.max_background_per_client" in message
    clock.advance(POLL_S)

    async def one_answered() -> bool:
        return await _status(one, "resp_one") == "completed"

    await eventually(one_answered, what="resp_one answered at its next read")
    assert await one.server.jobs.settle(10) == 0
    await _no_marks(one)
    assert await one.runtime.store.members("bg-queue:" + _SCOPED) == {}


async def test_a_waiters_ticket_is_renewed_while_it_waits(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A ticket lasts `TICKET_TTL_S` (a crashed replica's waiters soon owed nothing): one still
    waiting renews it at each read, one mark at a time, and keeps its turn."""
    clock = _clock()
    router = await start_router(_config(fake, {"backend": "memory"}), clock=clock)
    await _queued(fake, router, clock)
    store = router.runtime.store
    assert isinstance(store, MemoryStateStore)
    (first,) = store.tokens("bg-queue:" + _SCOPED)
    marks = [first]

    async def renewed() -> bool:
        now = store.tokens("bg-queue:" + _SCOPED)
        return len(now) == 1 and now[0] not in marks

    for _ in range(int(TICKET_TTL_S // POLL_S) + 1):  # outlasting a ticket not renewed
        clock.advance(POLL_S)
        await eventually(renewed, what="its ticket renewed")
        marks.extend(store.tokens("bg-queue:" + _SCOPED))
    assert {ticket for ticket, _ in marks} == {first[0]}  # one name: the same turn
    await _refused(router, "resp_newcomer")  # still the one place's: held by resp_two
    fake.state.release()
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_one") == "completed"
    await _no_marks(router)
    assert store.tokens("bg-queue:" + _SCOPED) == []


async def _places(router: RouterHandle) -> set[str]:
    return set(await router.runtime.store.members("bg-jobs:" + _SCOPED))


async def test_two_waiters_on_one_replica_take_the_places_given_back_in_their_order(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """resp_b, then resp_a, wait out model-b's cooldown aside and come back from it at one
    instant: their tickets tie on the clock, so resp_a's sorts first (the order every replica
    reads), though resp_b queued first here. Each place given back goes at once (the clock not
    moved) to the first ticket still waiting, then to the next: none is left to a poll."""
    clock = _clock()
    config = _config(fake, state_section)
    config["responses"]["max_background_per_client"] = 2
    router = await start_router(config, clock=clock)
    await _cooled(fake, router)
    await _start(router, "resp_b", "beta/model-b")
    await _asleep(clock, 1)
    await _start(router, "resp_a", "beta/model-b")
    await _asleep(clock, 2)
    fake.state.hold()
    await _start(router, "resp_x", "alpha/model-a")
    await _start(router, "resp_y", "alpha/model-a")
    await fake.state.wait_for(lambda: fake.state.held == 2)
    clock.advance(300.0)
    await _in_line(router, 2, "both queued for a place")
    moved = clock.monotonic()
    for ended, taker in (("resp_x", "resp_a"), ("resp_y", "resp_b")):
        cancel = pb.CancelResponseRequest(id=ended)
        await router.stub.CancelResponse(cancel, metadata=AS_SERVICE)

        async def taken(taker: str = taker) -> bool:
            return taker in await _places(router)

        await eventually(taken, what=f"{taker} given {ended}'s place")
        assert len(await _places(router)) == 2
    assert clock.monotonic() == moved  # no poll's interval went by
    assert await router.runtime.store.members("bg-queue:" + _SCOPED) == {}
    fake.state.release()
    assert await router.server.jobs.settle(10) == 0
    assert [await _status(router, r) for r in ("resp_a", "resp_b")] == ["completed"] * 2
    await _no_marks(router)


async def test_a_waiter_woken_often_still_renews_its_ticket(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """A waiter woken more often than `POLL_S` (here by reloads, each a wake, 9 s apart) and
    refused each time (resp_two holds the place) renews its ticket as one never woken does: it
    renewed only at a poll's end, and its ticket lapsed after `TICKET_TTL_S` while it waited,
    its place owed no more (a newcomer on another replica would be let in before it)."""
    clock = _clock()
    config = _config(fake, state_section)
    router = await start_router(copy.deepcopy(config), clock=clock)
    await _queued(fake, router, clock)
    (first,) = await router.runtime.store.members("bg-queue:" + _SCOPED)

    async def parked() -> bool:  # its poll's window opened now: it read the store, and waits
        return any(w.when() == clock.monotonic() + POLL_S for w in clock.windows)

    for _ in range(int(TICKET_TTL_S // (POLL_S - 1)) + 1):  # past a ticket's lapse
        clock.advance(POLL_S - 1)
        await router.server.reload(SwitchboardConfig.model_validate(copy.deepcopy(config)))
        await eventually(parked, what="resp_one woken, refused, and waiting again")
    assert set(await router.runtime.store.members("bg-queue:" + _SCOPED)) == {first}
    await _refused(router, "resp_newcomer")
    fake.state.release()
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_one") == "completed"
    await _no_marks(router)
    assert await router.runtime.store.members("bg-queue:" + _SCOPED) == {}


@pytest.mark.parametrize("ending", ["timed_out", "stopped"])
async def test_a_waiter_ended_while_queued_leaves_no_ticket(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str, ending: str
) -> None:
    """resp_one queued on replica `one` ends there, out of its time limit (on the router's
    clock) or its replica stopping: its ticket goes with it (read on replica `two`), else every
    start of its client on any replica would yield to it until it lapsed."""
    clock = _clock()
    config = _config(fake, redis_state(redis_url, redis_prefix))
    config["responses"]["background_timeout_s"] = 400
    one = await start_router(copy.deepcopy(config), clock=clock)
    two = await start_router(copy.deepcopy(config), clock=clock)
    await _queued(fake, one, clock)
    if ending == "timed_out":
        clock.advance(100.0)  # 400 s since its start (resp_two's too: it started then)
        assert await one.server.jobs.settle(10) == 0
        loaded = await one.stub.LoadResponses(
            pb.LoadResponsesRequest(ids=["resp_one"]), metadata=AS_SERVICE
        )
        assert "time limit of 400 s" in loaded.responses[0].response_json
    else:
        await one.server.shutdown(grace=0)
    assert await two.runtime.store.members("bg-queue:" + _SCOPED) == {}
    assert await _status(two, "resp_one") == "failed"
    fake.state.release()
    assert await one.server.jobs.settle(10) == 0
    assert await two.runtime.store.members("bg-aside:" + _SCOPED) == {}
