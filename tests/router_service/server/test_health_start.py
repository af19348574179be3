"""A starting router says SERVING only once it can serve as configured: until then the overall
health (what a Kubernetes gRPC probe and client-side health checking ask) and each service's are
NOT_SERVING, not grpc's default SERVING."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router_service.config import SwitchboardConfig
from router_service.errors import ConfigError
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer
from router_service.state import DocumentPart, MemoryStateStore
from tests.conftest import base_config

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HeldReads(MemoryStateStore):
    """A store whose document reads (the issued client keys' log, read as the router starts)
    wait until released once armed: a Redis slow to answer."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        if self.armed:
            self.reached.set()
            await self.released.wait()
        return await super().read_document(name, start, max_bytes)


async def test_a_router_still_starting_is_not_serving(fake: FakeUpstream) -> None:
    store = HeldReads()
    config = SwitchboardConfig.model_validate(base_config(fake.base_url))
    server = RouterServer(await Runtime.create(config, store=store), port=0)
    store.armed = True
    starting = asyncio.create_task(server.start())
    try:
        await asyncio.wait_for(store.reached.wait(), 10)  # listening, the client keys unread
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "switchboard.v1.RouterService", "switchboard.v1.AdminService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == NOT_SERVING, service or "overall"
            store.released.set()
            await asyncio.wait_for(starting, 10)
            for service in ("", "switchboard.v1.RouterService", "switchboard.v1.AdminService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == SERVING, service or "overall"
    finally:
        store.released.set()
        await starting
        await server.shutdown(grace=0)


class FailingReads(MemoryStateStore):
    """A store whose document reads fail with an error of its own (not `StoreUnavailableError`,
    which a start rides out): the start fails after the server began to listen."""

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        raise RuntimeError("the issued keys' log does not read")


async def _refused(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        except grpc.aio.AioRpcError as exc:
            return exc.code() is grpc.StatusCode.UNAVAILABLE
    return False


async def test_a_start_that_fails_or_is_cancelled_stops_listening(fake: FakeUpstream) -> None:
    """Not a server left listening NOT_SERVING (its port held) for as long as the process lives
    (a caller that catches the error, a test; or SIGTERM while it starts)."""
    config = SwitchboardConfig.model_validate(base_config(fake.base_url))
    server = RouterServer(await Runtime.create(config, store=FailingReads()), port=0)
    with pytest.raises(RuntimeError, match="does not read"):
        await server.start()
    assert await _refused(server.address)
    store = HeldReads()
    held = RouterServer(await Runtime.create(config, store=store), port=0)
    store.armed = True
    starting = asyncio.create_task(held.start())
    await asyncio.wait_for(store.reached.wait(), 10)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert await _refused(held.address)
    await held.shutdown(grace=0)  # nothing left to do: no error


async def test_certificate_files_that_do_not_load_close_the_runtime(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """As a port it cannot bind: the runtime built for it (its HTTP client, its store) closed,
    nothing left to stop; the error names the files."""
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("not PEM\n")
    tls = {"cert_file": str(tmp_path / "cert.pem"), "key_file": str(tmp_path / "key.pem")}
    config = SwitchboardConfig.model_validate(
        base_config(fake.base_url, server={"port": 0, "tls": tls})
    )
    runtime = await Runtime.create(config)
    server = RouterServer(runtime)

    with pytest.raises(ConfigError, match=r"server\.tls"):
        await server.start()

    assert runtime.http.is_closed
    await server.shutdown(grace=0)  # nothing left to do: no error
