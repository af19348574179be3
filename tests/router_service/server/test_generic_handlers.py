"""The router serves RouterService, AdminService and health through their generic handlers only
(router_service/server/_generic.py): grpc.aio keeps no task per registered method, which it would
wait on for every call, and every service still answers, through the interceptors."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import RouterHandle
from tests.router_service.server.test_router_service import chat_params


def method_waiters() -> list[asyncio.Task[object]]:
    """grpc.aio's tasks that each wait for the next call of one registered method."""
    return [t for t in asyncio.all_tasks() if "_request_registered_call" in repr(t)]


async def test_no_task_waits_per_method_and_every_service_answers(router: RouterHandle) -> None:
    response = await router.stub.Chat(pb.ChatRequest(params=chat_params()), timeout=10)
    info = await router.admin.GetServerInfo(admin_pb.GetServerInfoRequest(), timeout=10)
    health = health_pb2_grpc.HealthStub(router.channel)
    status = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)

    assert method_waiters() == []
    assert response.completion.choices[0].message.text == "Echo: hello there"
    assert info.replica
    assert status.status == health_pb2.HealthCheckResponse.SERVING
