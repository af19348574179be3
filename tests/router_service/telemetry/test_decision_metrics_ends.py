"""Decisions (PickRoute, then ReportOutcome) whose lease ends other than by a plain report or
expiry, counted once in the request metrics all the same: a pick's sweep or a report cut short
by its caller, a router's stop, a report the picking replica takes while cut off from Redis."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.replicas.harness import replica_config, two_replicas
from tests.replicas.redis_fixtures import RedisProxy, redis_proxy
from tests.router_service.server.test_file_upload_cut import cut_short
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client
from tests.router_service.telemetry.spans import Trace, attrs
from tests.router_service.telemetry.test_decision_metrics import ROUTE, cancelled_while_held
from tests.router_service.telemetry.test_metrics import samples, value

__all__ = ["redis_proxy"]  # a fixture


async def test_an_expired_lease_a_cancelled_pick_was_sweeping_is_still_counted(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_prefix: str,
) -> None:
    """A pick sweeps the expired leases first: cancelled while its sweep asks Redis of one, the
    sweep goes on without it, and the expired lease is counted UNKNOWN once."""
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    clock.advance(one.runtime.config.route_lease_ttl_s + 1)
    redis_proxy.hold_replies_after(b":route:")  # the sweep asking whether it was taken
    call = one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    picking = asyncio.ensure_future(call)
    await asyncio.wait_for(redis_proxy.held.wait(), 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await picking

    def counted(outcome: str) -> float:
        found = samples(captured.prometheus_text())
        return value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome=outcome)

    async def left() -> bool:  # its handler cancelled, while its sweep waits on Redis
        return counted("CANCELLED") == 1

    await eventually(left, what="the cancelled pick counted")
    await redis_proxy.restore()
    await one.runtime.route_leases.sweep()
    assert counted("UNKNOWN") == 1
    assert len(one.runtime.route_leases) == 0
    assert await one.leases_held() == 0


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
async def test_a_lease_outstanding_at_a_stop_is_counted_unknown_once(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
    shared: bool,
) -> None:
    """A replica that stops gives back its leases still outstanding and counts each UNKNOWN
    (no report can reach it any more); on Redis it takes their records, so a report of one
    that reaches another replica afterwards is refused, not counted a second time."""
    config = with_route_client(replica_config(fake.base_url, redis_url, redis_prefix))
    if not shared:
        config["state"] = {"backend": "memory"}
    one, two = await two_replicas(start_router, config)
    picked = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    await one.server.shutdown(grace=0.5)
    report = pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK)
    assert not (await two.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted

    found = samples(captured.prometheus_text())
    unknown = {**ROUTE, "switchboard_outcome": "UNKNOWN", "switchboard_model_group": "chain"}
    assert value(found, "switchboard_requests_total", **unknown) == 1
    assert value(found, "switchboard_requests_total") == 1
    assert value(found, "switchboard_attempts_total", switchboard_outcome="UNKNOWN") == 1
    assert await two.leases_held() == 0


async def report_status(captured: TelemetryCapture) -> int:
    """The status on the one ReportOutcome call's SERVER span, once it ended (its handler may
    unwind after its caller saw the cancel)."""

    def served() -> list[ReadableSpan]:
        return Trace(captured.spans()).named("switchboard.v1.RouterService/ReportOutcome")

    async def ended() -> bool:
        return len(served()) == 1

    await eventually(ended, what="the ReportOutcome call's SERVER span ended")
    return int(attrs(served()[0])["rpc.grpc.status_code"])


@pytest.mark.parametrize(
    ("moved_s", "status"),
    [(5.0, grpc.StatusCode.CANCELLED), (10.0, grpc.StatusCode.DEADLINE_EXCEEDED)],
    ids=["left", "due"],
)
async def test_a_report_cancelled_near_its_deadline_is_read_by_its_deadline(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_proxy: RedisProxy,
    redis_prefix: str,
    moved_s: float,
    status: grpc.StatusCode,
) -> None:
    """A report held at the state store (taking its route's record) whose call is cancelled as
    its 10 s timeout passes on the router's clock (gRPC may have sent it 0.1 s rounded up): its
    deadline's, on its SERVER span, as a pick's is read (not by gRPC's time remaining, which is
    not 0 at a cancel that came a little early);
    with 5 s left its caller left. Its lease, taken by the report that did not end, is counted
    once, UNKNOWN, by the next sweep (it was neither reported nor left to expire)."""
    clock = ManualClock(1_700_000_000.0)
    config = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    config["state"].update(socket_timeout_s=60.0)
    router = await start_router(config, clock=clock)
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    redis_proxy.hold_replies_after(b":route:")  # held where it takes its route's record
    report = pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK)
    call = router.stub.ReportOutcome(report, metadata=AS_SERVICE, timeout=10)
    await cancelled_while_held(call, redis_proxy, clock, moved_s)

    assert (await report_status(captured)) == status.value[0]
    await router.runtime.route_leases.sweep()
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome="UNKNOWN") == 1
    assert value(found, "switchboard_requests_total") == 1
    assert len(router.runtime.route_leases) == 0
    assert await router.leases_held() == 0


async def test_a_report_the_picker_cut_off_takes_after_another_replica_is_counted_once(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Reported on another replica, then again on the picking one while it is cut off from
    Redis: that one takes it (it cannot tell it was taken), but counts it only once it can ask
    again, and not at all as another replica took it first; counted there, once."""
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    direct = with_route_client(replica_config(fake.base_url, redis_url, redis_prefix))
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    picked = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK)
    assert (await two.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await redis_proxy.cut()
    assert (await one.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await redis_proxy.restore()
    clock.advance(one.runtime.config.route_lease_ttl_s / 4)
    await one.runtime.route_leases.sweep()

    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome="OK") == 1
    assert value(found, "switchboard_requests_total") == 1
    assert value(found, "switchboard_attempts_total") == 1


async def test_a_report_the_picker_cut_off_takes_alone_is_counted_once_it_can_tell(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_prefix: str,
) -> None:
    """Reported on the picking replica alone while it is cut off from Redis: counted by its
    outcome once, by the sweep that finds the record its own (taking it then)."""
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    picked = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(
        lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK, total_tokens=40
    )
    await redis_proxy.cut()
    assert (await one.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await redis_proxy.restore()
    for _ in range(2):
        clock.advance(one.runtime.config.route_lease_ttl_s / 4)
        await one.runtime.route_leases.sweep()

    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome="OK") == 1
    assert value(found, "switchboard_requests_total") == 1
    assert value(found, "switchboard_client_tokens_total", gen_ai_token_type="total") == 40


async def test_a_report_the_picker_cut_off_takes_before_another_replica_is_counted_once(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Reported on the picking replica while it is cut off from Redis, then on another replica
    (whose Redis still holds the record): both take it, one counts it, the other replica (the
    picking one's sweep then finds the record taken)."""
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    direct = with_route_client(replica_config(fake.base_url, redis_url, redis_prefix))
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    picked = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK)
    await redis_proxy.cut()
    assert (await one.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    assert (await two.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await redis_proxy.restore()
    clock.advance(one.runtime.config.route_lease_ttl_s / 4)
    await one.runtime.route_leases.sweep()

    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome="OK") == 1
    assert value(found, "switchboard_requests_total") == 1


# Where the report's caller leaves (the reply Redis holds), on which replica, what it counts as.
_LEFT = [(b"taken", True, "UNKNOWN"), (b"ZREM", False, "OK"), (b"ZREM", True, "OK")]


@pytest.mark.parametrize(
    ("held", "elsewhere", "outcome"), _LEFT, ids=["taking", "give-back", "give-back-elsewhere"]
)
async def test_a_report_whose_caller_left_midway_is_counted_once(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
    held: bytes,
    elsewhere: bool,
    outcome: str,
) -> None:
    """Its caller gone while Redis (its reply late) took the route's record for another replica
    than the picking one: the record is taken, so the picking replica counts nothing; the taking
    one counts it UNKNOWN at its next sweep, as a report that did not end (was counted nowhere),
    and gives back its key's slot. Gone while Redis gave the key's slot back, the report applied
    (the key's outcome, the session's choice, the statistics), on either replica: counted once,
    as reported (was counted nowhere: out of every table, its count skipped)."""
    direct = with_route_client(replica_config(fake.base_url, redis_url, redis_prefix))
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    through["state"].update(socket_timeout_s=60.0)  # the late reply is not a timeout
    clock = ManualClock(time.time())
    two = await start_router(through, clock=clock)
    one = await start_router(direct, clock=clock) if elsewhere else two
    picked = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    redis_proxy.hold_replies_after(held)  # its record taken, or its key's slot given back
    report = pb.ReportOutcomeRequest(
        lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK, total_tokens=7
    )
    call = two.stub.ReportOutcome(report, metadata=AS_SERVICE)
    reporting = asyncio.ensure_future(call)
    await asyncio.wait_for(redis_proxy.held.wait(), 10)
    await cut_short(two, call)
    await redis_proxy.restore()

    assert (await report_status(captured)) == grpc.StatusCode.CANCELLED.value[0]
    assert reporting.cancelled()
    clock.advance(one.runtime.config.route_lease_ttl_s + 1)
    await one.runtime.route_leases.sweep()
    await two.runtime.route_leases.sweep()

    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome=outcome) == 1
    assert value(found, "switchboard_requests_total") == 1
    assert len(one.runtime.route_leases) == 0
    assert await one.leases_held() == 0
