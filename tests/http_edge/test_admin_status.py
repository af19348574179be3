"""`/admin/api/status`'s several router calls: one failing ends the others with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.fake_upstream import FakeUpstream
from router_service.server._admin_servicer import AdminServicer
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.http_edge.test_admin import ADMIN, TOKEN, StartEdge, get, start_edge

__all__ = ["start_edge"]  # the fixture


async def test_a_failed_status_call_leaves_none_of_the_others_running(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ListKeys fails while GetRoutingStats is held on the router: the status page's answer is
    the failure's, and the held call is cancelled with it, not left running until its timeout."""
    held, released, cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def held_stats(self: AdminServicer, request: Any, context: Any) -> Any:
        held.set()
        try:
            await released.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return admin_pb.GetRoutingStatsResponse()

    async def failed_keys(self: AdminServicer, request: Any, context: Any) -> Any:
        await held.wait()
        await context.abort(grpc.StatusCode.INTERNAL, "the store broke")

    monkeypatch.setattr(AdminServicer, "GetRoutingStats", held_stats)
    monkeypatch.setattr(AdminServicer, "ListKeys", failed_keys)
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router, admin_token=TOKEN)
    try:
        response = await get(edge, "/admin/api/status", ADMIN)
        left = [t for t in asyncio.all_tasks() if "AdminCalls." in repr(t.get_coro())]
        # The edge's cancel reaches the router's handler later (over the wire, then through
        # gRPC Core's threads), maybe after the edge's answer: released before it, the held call
        # would end as if never cancelled. So released only once cancelled (or the test failed).
        await eventually(_is_set(cancelled), what="the held call cancelled on the router")
    finally:
        released.set()
    assert response.status_code == 500 and response.json()["error"]["type"]
    assert left == []


def _is_set(event: asyncio.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check
