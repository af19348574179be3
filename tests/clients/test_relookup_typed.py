"""Only gRPC's own UNAVAILABLE (no router answered) has a client look its router names up
again: a router's typed UNAVAILABLE (Switchboard's error details: every upstream down) came
from a router the client reached, whose address is right. Looking the names up then cost a
DNS query per failing call and, with names that moved meanwhile, a channel swap away from a
router that works.

A real router on loopback, its upstreams failing (the fake upstream's 500s; each call on a
model of its own, which no earlier failure cooled down: the router refused it at once, or
waited for the cooldown's end, rather than answer UNAVAILABLE), its address
named in a list the test's resolver answers (`RouterTarget`'s `lookup`), with a manual clock
past the time a target looks its names up again after. Both clients, unary calls and
streams."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import grpc
import pytest

from clients import RELOOKUP_S, RouterClient, RouterError, RouterTarget, SyncRouterClient
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.clients.test_target_relookup import Names
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream

pytestmark = pytest.mark.timeout(60)

# The task and thread a failed call starts to look the names up again (`_found_again`).
_RELOOKUP = "switchboard-relookup"


def _named(router: RouterHandle, names: Names, clock: ManualClock) -> RouterTarget:
    port = router.server.address.rpartition(":")[2]
    return RouterTarget(
        [f"router-a:{port}", f"router-b:{port}"], lookup=names, clock=clock.monotonic
    )


def _typed_unavailable(error: RouterError) -> None:
    assert error.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert not error.details.bare  # the router's answer, its details and all
    assert error.details.reason == "UPSTREAM_ERROR"  # every upstream answered 500


async def _relookups_settled() -> None:
    """Every relookup the client started has ended (none, when it started none): the async
    client's task, the blocking client's thread, each started before the call's error."""
    tasks = [task for task in asyncio.all_tasks() if task.get_name() == _RELOOKUP]
    await asyncio.gather(*tasks)
    for thread in threading.enumerate():
        if thread.name == _RELOOKUP:
            await asyncio.to_thread(thread.join)


async def _upstreams_down(
    start_router: StartRouter, fake: FakeUpstream
) -> tuple[Names, ManualClock, RouterTarget]:
    """A router whose upstreams answer 500, with models `down-0` and `down-1` (one a call);
    the names of its address (127.0.0.1) and the clock that relookups go by."""
    models = {
        f"down-{n}": {"deployments": [{"provider": "alpha", "model": f"model-{n}"}]}
        for n in range(2)
    }
    router = await start_router(base_config(fake.base_url, models=models))
    names, clock = Names({"router-a": "127.0.0.1", "router-b": "127.0.0.1"}), ManualClock()
    fake.state.set_scenario(Scenario.server_error(500))
    return names, clock, _named(router, names, clock)


async def test_an_async_call_failing_typed_unavailable_looks_no_name_up(
    start_router: StartRouter, fake: FakeUpstream
) -> None:
    names, clock, target = await _upstreams_down(start_router, fake)
    async with RouterClient(target, ready_wait_s=0) as client:
        looked_up = client.target
        assert names.asked == ["router-a", "router-b"]
        names.point_at("127.0.0.2")  # nothing listens there: a move would break the client
        clock.advance(RELOOKUP_S)
        for failing in (client.chat(chat("down-0")), _async_stream_read(client)):
            with pytest.raises(RouterError) as failed:
                await failing
            _typed_unavailable(failed.value)
            await _relookups_settled()
            assert names.asked == ["router-a", "router-b"]
            assert client.target == looked_up


async def _async_stream_read(client: RouterClient) -> None:
    async with client.chat_stream(chat_stream("down-1")) as stream:
        await anext(stream)


async def test_a_blocking_call_failing_typed_unavailable_looks_no_name_up(
    start_router: StartRouter, fake: FakeUpstream
) -> None:
    names, clock, target = await _upstreams_down(start_router, fake)
    with SyncRouterClient(target, ready_wait_s=0) as client:
        await asyncio.to_thread(client.list_models)
        looked_up = client.target
        assert names.asked == ["router-a", "router-b"]
        names.point_at("127.0.0.2")
        clock.advance(RELOOKUP_S)

        def streamed() -> None:
            with client.chat_stream(chat_stream("down-1")) as stream:
                next(stream)

        calls: tuple[Callable[[], object], ...] = (lambda: client.chat(chat("down-0")), streamed)
        for failing in calls:
            with pytest.raises(RouterError) as failed:
                await asyncio.to_thread(failing)
            _typed_unavailable(failed.value)
            await _relookups_settled()
            assert names.asked == ["router-a", "router-b"]
            assert client.target == looked_up
