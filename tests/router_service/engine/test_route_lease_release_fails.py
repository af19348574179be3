"""PickRoute leases whose release fails (the state store lost): a report that was applied is
accepted all the same, and a sweep gives back every expired lease, not only those before the
first failure; each failed release is logged once (the slot expires by its TTL)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.engine import FailedEnd, RequestContext
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.release_failures import FAILED, FINISHED, RELEASE_ERRORS, RELEASE_IDS, FailingReleases
from tests.router_service.engine.test_route_leases import http, route_leases
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client

__all__ = ["http"]  # the fixture, shared


def _told(caplog: pytest.LogCaptureFixture, what: str) -> int:
    assert "sk-alpha" not in caplog.text
    return len([r for r in caplog.records if what in r.getMessage()])


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_report_whose_release_fails_is_accepted(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    config = with_route_client(base_config(fake.base_url))
    router = await start_router(config, store=FailingReleases(error))
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        report = await router.stub.ReportOutcome(
            pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK),
            metadata=AS_SERVICE,
        )

    assert report.accepted
    assert _told(caplog, FINISHED) == 1


@pytest.mark.parametrize("error", RELEASE_ERRORS, ids=RELEASE_IDS)
async def test_a_sweep_gives_back_every_expired_lease_when_releases_fail(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    clock = ManualClock()
    config = with_route_client(base_config(fake.base_url))
    config["server"]["route_lease_ttl_s"] = 30
    store = FailingReleases(error)
    router = await start_router(config, clock=clock, store=store)
    for _ in range(2):
        await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    clock.advance(31.0)

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        assert await router.runtime.route_leases.sweep() == 2

    assert _told(caplog, FAILED) == 2


class LeaveWaitsReleaseFails(MemoryStateStore):
    """A Redis-like store (round trips) being lost: a session mark's leave waits (its round trip
    under way), a key release fails."""

    completes_without_waiting = False

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.leaving = asyncio.Event()

    async def leave(self, group: str, member: str, token: str) -> None:
        self.leaving.set()
        await asyncio.Event().wait()  # the answer never comes before the sweep is stopped

    async def release(self, resource: str, lease_id: str) -> None:
        raise StoreUnavailableError("redis: connection lost")


async def test_a_sweep_cancelled_as_its_release_fails_is_still_cancelled(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    store = LeaveWaitsReleaseFails(clock)
    leases, _ = route_leases(http, store, clock, thread_protection="provider-ban")
    ctx = RequestContext("p/m", clock, session_id="s")
    await leases.pick(ctx, tokens=0, exclude=frozenset())
    clock.advance(61.0)

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        sweep = asyncio.create_task(leases.sweep())
        await store.leaving.wait()
        sweep.cancel()  # the router stops (`aclose` cancels its sweeper) during the leave
        with pytest.raises(asyncio.CancelledError):
            await sweep  # not swallowed with the release's failure that came after it
    assert _told(caplog, FAILED) == 1  # the release's failure: logged, not raised


async def test_a_stream_end_cancelled_as_its_release_fails_is_still_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = LeaveWaitsReleaseFails(ManualClock())

    async def stream() -> None:  # as a stream's: its stack holds the key and the session mark
        stack = AsyncExitStack()
        stack.push_async_callback(store.release, "slots", "lease")
        stack.push_async_callback(store.leave, "marks", "s", "token")
        async with FailedEnd(stack):
            pass  # the stream told its caller all it had

    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        ending = asyncio.create_task(stream())
        await store.leaving.wait()
        ending.cancel()  # the caller left during the leave
        with pytest.raises(asyncio.CancelledError):
            await ending
    assert _told(caplog, FAILED) == 1
