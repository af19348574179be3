"""Two router replicas on one Redis see the same clients' figures (AdminService.ListClients): the
minute's requests and tokens, the budgets and the stored bytes that calls through either one
counted, on the replicas and through an edge in front of each (`/admin/api/clients`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.responses import ENTRY_BYTES
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge
from tests.replicas.harness import replica_config, two_replicas
from tests.router_service.auth.helpers import bearer, chat, client
from tests.router_service.server.client_figures import (
    ALICE,
    ALICE_BUDGETS,
    ALICE_LIMITS,
    MIDNIGHT,
    NEW_MONTH,
    NOON,
    OPS,
    budgets,
    stored,
)

TOKEN = "replicas-admin-token"


async def listed(replica: RouterHandle) -> admin_pb.ListClientsResponse:
    answer: admin_pb.ListClientsResponse = await replica.admin.ListClients(
        admin_pb.ListClientsRequest(), metadata=bearer(OPS), timeout=10
    )
    return answer


def without_countdowns(view: Any) -> Any:
    """An edge's JSON without what it computes from its own wall clock (`*_in_s`)."""
    if isinstance(view, dict):
        return {k: without_countdowns(v) for k, v in view.items() if not k.endswith("_in_s")}
    if isinstance(view, list):
        return [without_countdowns(item) for item in view]
    return view


async def test_every_replica_shows_what_calls_through_each_counted(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> None:
    clients = [
        client("ops", OPS, scopes=["admin"]),
        client("alice", ALICE, **ALICE_LIMITS, **ALICE_BUDGETS),
    ]
    config = replica_config(fake.base_url, redis_url, redis_prefix, auth={"clients": clients})
    one, two = await two_replicas(start_router, config, ManualClock(NOON + 30))
    spent = 0
    for replica in (one, two, one):
        answer = await replica.stub.Chat(chat(model="a"), metadata=bearer(ALICE))
        spent += answer.completion.usage.total_tokens
    assert (await two.stub.StoreResponse(stored("resp_r"), metadata=bearer(ALICE))).stored

    seen_by_one, seen_by_two = await listed(one), await listed(two)

    assert seen_by_one == seen_by_two
    alice = {status.name: status for status in seen_by_two.clients}["alice"]
    assert (alice.minute_requests, alice.minute_tokens) == (3, spent)
    assert budgets(alice) == [("day", 1000, spent, MIDNIGHT), ("month", 20000, spent, NEW_MONTH)]
    assert alice.stored_responses.used == stored("resp_r").response.ByteSize() + ENTRY_BYTES
    views = []
    for replica in (one, two):
        edge = await start_edge(replica, admin_token=TOKEN, admin_router_key=OPS)
        async with httpx.AsyncClient(base_url=edge.base_url) as http:
            response = await http.get(
                "/admin/api/clients", headers={"authorization": f"Bearer {TOKEN}"}
            )
        views.append(without_countdowns(response.json()["clients"]))
    assert views[0] == views[1] and views[0][1]["minute_requests"] == 3
