"""The decision API behind a load balancer: a route picked on one replica is reported on
another (real Redis, two replicas on one clock)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.engine import _route_leases as route_leases_module
from router_service.engine._route_records import record_name
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import replica_config, two_replicas
from tests.replicas.redis_fixtures import keys_under

SERVICE_KEY = "sk-service-with-route-scope"
AS_SERVICE = (("authorization", f"Bearer {SERVICE_KEY}"),)


def route_config(fake_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    """Provider alpha's one key serves one call at a time; a service may pick routes."""
    config = replica_config(fake_url, redis_url, prefix)
    config["providers"]["alpha"]["keys"] = [{"key": "k1", "max_in_flight": 1}]
    config["auth"] = {
        "clients": [
            {"name": "svc", "key_sha256": hash_key(SERVICE_KEY), "scopes": ["chat", "route"]}
        ]
    }
    return config


async def pick(replica: RouterHandle, session: str = "") -> pb.PickRouteResponse:
    routing = routing_pb2.RoutingOptions(session_id=session)
    request = pb.PickRouteRequest(model="chain", routing=routing)
    response: pb.PickRouteResponse = await replica.stub.PickRoute(request, metadata=AS_SERVICE)
    return response


async def report(
    replica: RouterHandle, lease_id: str, outcome: routing_pb2.Outcome.ValueType
) -> bool:
    request = pb.ReportOutcomeRequest(lease_id=lease_id, outcome=outcome, upstream_status=503)
    answer = await replica.stub.ReportOutcome(request, metadata=AS_SERVICE)
    return bool(answer.accepted)


async def test_a_route_picked_on_one_replica_is_reported_on_the_other(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    one, two = await two_replicas(
        start_router, route_config(fake.base_url, redis_url, redis_prefix)
    )
    picked = await pick(one)
    assert picked.deployment == "alpha/model-a"

    assert await report(two, picked.lease_id, routing_pb2.OUTCOME_UPSTREAM_ERROR)
    # Its key's one slot is free again at once (not held for the lease's TTL), and the failure
    # cooled the deployment on both replicas, as a proxied call's would.
    assert (await two.runtime.store.held(["lease:alpha:" + picked.key_fingerprint])) == [0]
    assert (await pick(one)).deployment == "beta/model-b"
    assert (await pick(two)).deployment == "beta/model-b"
    # Reported once: neither replica takes it again.
    assert not await report(one, picked.lease_id, routing_pb2.OUTCOME_OK)
    assert not await report(two, picked.lease_id, routing_pb2.OUTCOME_OK)

    # The picking replica forgets it at its next sweep, as reported (not as expired unreported).
    clock = one.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(one.runtime.config.route_lease_ttl_s + 1)
    assert await one.runtime.route_leases.sweep() == 1  # the pick just above, on beta
    assert len(one.runtime.route_leases) == 0


async def test_a_route_reported_on_another_replica_gives_its_sessions_place_back(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = route_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(thread_protection="provider-ban", max_sessions=1)
    config["providers"]["alpha"]["keys"] = ["k1"]
    one, two = await two_replicas(start_router, config)
    picked = await pick(one, session="s1")
    assert picked.deployment == "alpha/model-a"
    assert (await pick(two, session="s2")).deployment == "beta/model-b"  # alpha serves s1

    assert await report(two, picked.lease_id, routing_pb2.OUTCOME_OK)
    assert (await pick(one, session="s2")).deployment == "alpha/model-a"
    # The store names the route by a hash: its lease id (what lets a caller report) is not a
    # Redis key, nor in one.
    stored = keys_under(redis_url, redis_prefix)
    assert not [key for key in stored if picked.lease_id in key]


async def test_a_route_whose_record_the_store_lost_is_reported_on_its_replica(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    one, two = await two_replicas(
        start_router, route_config(fake.base_url, redis_url, redis_prefix)
    )
    picked = await pick(one)
    # Evicted, or Redis restarted empty: no sign that another replica took its report.
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.delete(f"{redis_prefix}:doc:{record_name(picked.lease_id)}") == 1
    finally:
        client.close()
    assert not await report(two, picked.lease_id, routing_pb2.OUTCOME_OK)  # it cannot know it
    assert await report(one, picked.lease_id, routing_pb2.OUTCOME_OK)
    assert await one.leases_held() == 0


async def test_a_route_reported_on_another_replica_is_forgotten_before_its_ttl(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A service behind a load balancer reports most picks to another replica: they may not
    # count as the picking one's calls on their key, nor fill its table, for their whole TTL.
    one, two = await two_replicas(
        start_router, route_config(fake.base_url, redis_url, redis_prefix)
    )
    picked = await pick(one)
    assert await report(two, picked.lease_id, routing_pb2.OUTCOME_OK)
    assert await one.runtime.route_leases.sweep() == 0  # its background sweep, the clock still
    assert len(one.runtime.route_leases) == 0
    assert one.runtime.pools["alpha"].health[fingerprint("k1")].in_flight == 0

    # A table full of leases reported elsewhere: a pick makes room rather than refuse.
    monkeypatch.setattr(route_leases_module, "MAX_OUTSTANDING", 1)
    again = await pick(one)
    assert await report(two, again.lease_id, routing_pb2.OUTCOME_OK)
    assert (await pick(one)).deployment == "alpha/model-a"
    assert not await report(one, again.lease_id, routing_pb2.OUTCOME_OK)  # taken once


async def test_a_route_another_replica_cannot_serve_is_left_to_the_picking_one(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = route_config(fake.base_url, redis_url, redis_prefix)
    one = await start_router(config, clock=ManualClock(time.time()))
    # A rollout under way: the other replica's config no longer has that key.
    rotated = route_config(fake.base_url, redis_url, redis_prefix)
    rotated["providers"]["alpha"]["keys"] = [{"key": "k9", "max_in_flight": 1}]
    two = await start_router(rotated, clock=one.runtime.clock)
    picked = await pick(one)
    assert picked.deployment == "alpha/model-a"
    assert not await report(two, picked.lease_id, routing_pb2.OUTCOME_OK)  # it cannot
    # Its record left as it was: the replica that picked it takes the report (and the slot).
    assert await report(one, picked.lease_id, routing_pb2.OUTCOME_OK)
    assert await one.leases_held() == 0
