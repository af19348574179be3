"""The decision API (PickRoute, then ReportOutcome) in the request, attempt and client-token
metrics: one request and one attempt per decision, counted once its outcome is known (the
report, or the lease's expiry as UNKNOWN), never twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.harness import replica_config, two_replicas
from tests.replicas.redis_fixtures import RedisProxy, redis_proxy
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client
from tests.router_service.telemetry.spans import Trace, attrs
from tests.router_service.telemetry.test_metrics import samples, value

__all__ = ["redis_proxy"]  # a fixture

ROUTE = {"gen_ai_operation_name": "route", "switchboard_client": "svc"}


async def test_a_reported_decision_is_one_request_one_attempt_and_its_tokens(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(with_route_client(base_config(fake.base_url)))
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    # Its outcome is the report's: nothing counted yet.
    assert value(samples(captured.prometheus_text()), "switchboard_requests_total") == 0
    report = pb.ReportOutcomeRequest(
        lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK, total_tokens=812
    )
    assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    assert not (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted

    found = samples(captured.prometheus_text())
    ok = {**ROUTE, "switchboard_outcome": "OK", "switchboard_model_group": "chain"}
    assert value(found, "switchboard_requests_total", **ok) == 1
    assert value(found, "switchboard_requests_total") == 1  # the second report: not again
    attempt = {"switchboard_deployment": "alpha/model-a", "switchboard_outcome": "OK"}
    assert value(found, "switchboard_attempts_total", **attempt) == 1
    assert value(found, "switchboard_attempts_total") == 1
    tokens = {"switchboard_client": "svc", "gen_ai_token_type": "total"}
    assert value(found, "switchboard_client_tokens_total", **tokens) == 812


async def test_a_failed_report_and_an_expired_lease_count_by_their_outcomes(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    clock = ManualClock()
    config = with_route_client(base_config(fake.base_url))
    config["server"] = {"route_lease_ttl_s": 30}
    router = await start_router(config, clock=clock)
    first = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    failed = pb.ReportOutcomeRequest(
        lease_id=first.lease_id, outcome=routing_pb2.OUTCOME_RATE_LIMITED, upstream_status=429
    )
    assert (await router.stub.ReportOutcome(failed, metadata=AS_SERVICE)).accepted
    await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    clock.advance(31.0)
    assert await router.runtime.route_leases.sweep() == 1

    found = samples(captured.prometheus_text())
    for outcome in ("RATE_LIMITED", "UNKNOWN"):
        assert value(found, "switchboard_requests_total", switchboard_outcome=outcome) == 1
        assert value(found, "switchboard_attempts_total", switchboard_outcome=outcome) == 1
    assert value(found, "switchboard_client_tokens_total") == 0


async def test_a_refused_pick_is_a_request_by_its_outcome(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(with_route_client(base_config(fake.base_url)))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.PickRoute(pb.PickRouteRequest(model="nope"), metadata=AS_SERVICE)
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE) == 1
    assert value(found, "switchboard_attempts_total") == 0


# A timeout gRPC always sends rounded up (as 10.1 s: its 100 ms step above 10 s), so the router's
# clock reads a little time left when the caller's own deadline passes, in every run (a 10 s
# timeout is sent as 10 s or, some runs, as 10.1 s).
_ROUNDED_UP_TIMEOUT_S = 10.05


@pytest.mark.parametrize(
    ("moved_s", "outcome"),
    [(5.0, "CANCELLED"), (_ROUNDED_UP_TIMEOUT_S, "DEADLINE_EXCEEDED")],
    ids=["left", "due"],
)
async def test_a_pick_cancelled_near_its_deadline_is_read_as_a_request_reads_it(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_proxy: RedisProxy,
    redis_prefix: str,
    moved_s: float,
    outcome: str,
) -> None:
    """A pick held at the state store (the reply to its route's record) whose call is cancelled
    as its caller's deadline passes on the router's clock (which, gRPC having sent the timeout
    rounded up, reads a little time left): that was the deadline's, on its SERVER span and in
    `switchboard.requests`, as for a chat; with 5 s left its caller left."""
    clock = ManualClock(1_700_000_000.0)
    config = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    config["state"].update(socket_timeout_s=60.0)  # not reached by the clock's move
    config["telemetry"] = {"state_interval_s": 3600.0}  # no gauge poll reading alpha's leases
    router = await start_router(config, clock=clock)
    redis_proxy.hold_replies_after(b":route:")  # held where it keeps its route, past its lease
    call = router.stub.PickRoute(
        pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE, timeout=_ROUNDED_UP_TIMEOUT_S
    )
    await cancelled_while_held(call, redis_proxy, clock, moved_s)

    def served() -> list[ReadableSpan]:
        return Trace(captured.spans()).named("switchboard.v1.RouterService/PickRoute")

    def counted() -> float:
        found = samples(captured.prometheus_text())
        return value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome=outcome)

    async def ended() -> bool:
        # The span ends and the request is counted as the handler unwinds, in either order.
        return len(served()) == 1 and counted() > 0

    await eventually(ended, what="the PickRoute call's SERVER span ended and was counted")
    said = attrs(served()[0])
    assert said["rpc.grpc.status_code"] == getattr(grpc.StatusCode, outcome).value[0]
    assert counted() == 1
    assert len(router.runtime.route_leases) == 0  # never handed out: nothing to expire
    assert await router.leases_held() == 0


async def test_a_decision_picked_on_one_replica_is_counted_once_wherever_it_ends(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Behind a load balancer its report reaches another replica: reported there, counted there
    alone (the picking one forgets it); reported there too late, counted as its expiry's UNKNOWN
    once, by the replica that took its record (the picking one then finds it taken)."""
    config = with_route_client(replica_config(fake.base_url, redis_url, redis_prefix))
    one, two = await two_replicas(start_router, config)
    clock = one.runtime.clock
    assert isinstance(clock, ManualClock)
    reported = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    report = pb.ReportOutcomeRequest(lease_id=reported.lease_id, outcome=routing_pb2.OUTCOME_OK)
    assert (await two.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    late = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    clock.advance(one.runtime.config.route_lease_ttl_s + 1)  # its record is kept a while longer
    report = pb.ReportOutcomeRequest(lease_id=late.lease_id, outcome=routing_pb2.OUTCOME_OK)
    assert not (await two.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await one.runtime.route_leases.sweep()
    await two.runtime.route_leases.sweep()
    assert len(one.runtime.route_leases) == 0

    found = samples(captured.prometheus_text())
    for outcome in ("OK", "UNKNOWN"):
        assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome=outcome) == 1
        assert value(found, "switchboard_attempts_total", switchboard_outcome=outcome) == 1
    assert value(found, "switchboard_requests_total") == 2
    assert await one.leases_held() == 0


async def test_a_late_report_taken_elsewhere_is_counted_once_by_a_picker_cut_off(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """A lease expired unreported whose late report another replica took (counting its UNKNOWN)
    while the picking replica is cut off from Redis: that one cannot tell it was taken, and
    counts it not a second time (its sweep asks again once Redis answers)."""
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    direct = with_route_client(replica_config(fake.base_url, redis_url, redis_prefix))
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    late = await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    clock.advance(one.runtime.config.route_lease_ttl_s + 1)
    report = pb.ReportOutcomeRequest(lease_id=late.lease_id, outcome=routing_pb2.OUTCOME_OK)
    assert not (await two.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await redis_proxy.cut()
    await one.runtime.route_leases.sweep()
    await redis_proxy.restore()
    clock.advance(one.runtime.config.route_lease_ttl_s)  # past its record's life: asked last
    await one.runtime.route_leases.sweep()

    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome="UNKNOWN") == 1
    assert len(one.runtime.route_leases) == 0


async def test_an_expired_lease_nobody_took_is_counted_by_a_picker_cut_off(
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_prefix: str,
) -> None:
    """Cut off from Redis past its record's life, the picking replica counts its expired lease
    as UNKNOWN once all the same: left unsure, it is never lost."""
    through = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    await one.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    await redis_proxy.cut()
    for _ in range(2):  # expired (unsure: not counted), then past its record's life
        clock.advance(one.runtime.config.route_lease_ttl_s + 1)
        await one.runtime.route_leases.sweep()

    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", **ROUTE, switchboard_outcome="UNKNOWN") == 1
    await redis_proxy.restore()


async def cancelled_while_held(
    call: Any, redis_proxy: RedisProxy, clock: ManualClock, moved_s: float
) -> None:
    """`call` cancelled once Redis holds its reply, the router's clock moved `moved_s` first;
    back when its handler gave its key slot back (the ZREM a cancelled handler sends) and Redis
    answers again. The router hears of the cancel a little after its caller gave up (gRPC's own
    round): Redis answers once the handler was cancelled, not before (answered, it ends OK)."""
    calling = asyncio.ensure_future(call)
    await asyncio.wait_for(redis_proxy.held.wait(), 10)
    released = redis_proxy.sent_naming(b"ZREM")
    clock.advance(moved_s)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await calling
    await asyncio.wait_for(released.wait(), 10)
    await redis_proxy.restore()
