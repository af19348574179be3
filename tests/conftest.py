"""Shared fixtures: a fake upstream and routers built on it, all real servers on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, settings

from clients.switchboard.v1 import admin_service_pb2_grpc, router_service_pb2_grpc
from http_edge import EdgeSettings
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer
from router_service.state import StateStore
from tests.helpers import eventually
from tests.http_edge.harness import Edge, stop_edge
from tests.http_edge.harness import start_edge as start_edge_server
from tests.pki import issue_pki
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingReleases
from tests.tls_defaults import share_default_tls_contexts

# Property tests are judged by what they assert, never by the wall clock: an example's 200 ms
# deadline and the too-slow health check fail at random on a loaded CI machine.
settings.register_profile(
    "switchboard", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("switchboard")
share_default_tls_contexts()  # one CA-bundle load per worker, not one per client (tls_defaults.py)


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


# The connect timeout of a provider on the fake upstream: a hang guard. A connect on loopback is
# done at once, but a test worker starved on a loaded CI machine may wake to its timer first
# (the default 5 s), and the call fails as CONNECT_FAILED for nothing the test is about. Tests
# of a timeout set the provider's `timeouts` themselves.
HANG_GUARD: dict[str, float] = {"connect_s": 60.0}


def base_config(fake_url: str, **sections: Any) -> dict[str, Any]:
    """Two providers on the fake upstream and one ordered group over them; open access (the
    authentication tests pass their own `auth` section)."""
    config: dict[str, Any] = {
        "providers": {
            "alpha": {
                "base_url": fake_url,
                "keys": ["sk-alpha-1", "sk-alpha-2"],
                "timeouts": dict(HANG_GUARD),
            },
            "beta": {"base_url": fake_url, "keys": ["sk-beta-1"], "timeouts": dict(HANG_GUARD)},
        },
        "models": {
            "chain": {
                "deployments": [
                    {"provider": "alpha", "model": "model-a"},
                    {"provider": "beta", "model": "model-b"},
                ]
            },
            "embedder": {"deployments": [{"provider": "alpha", "model": "embed-a"}]},
        },
        "server": {"port": 0},
        "streams": {"heartbeat_s": 5},
        "auth": {"open": True},
    }
    config.update(sections)
    return config


class RouterHandle:
    """A started router and real channels to it."""

    def __init__(self, server: RouterServer, channel: grpc.aio.Channel) -> None:
        self.server = server
        self.channel = channel
        self.stub = router_service_pb2_grpc.RouterServiceStub(channel)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)

    @property
    def runtime(self) -> Runtime:
        return self.server.runtime  # the current one: a config reload replaces it

    async def leases_held(self, *, settled: bool = True) -> int:
        """Key slots held across every pool: zero whenever no request is in flight. `settled`:
        first wait for the releases that follow answers (on a shared store they run after the
        caller has its answer: engine/_afterwork.py)."""
        if settled:
            await self.runtime.afterwork.drain()
        total = 0
        for pool in self.runtime.pools.values():
            total += sum(s.in_flight for s in await pool.snapshot())
        return total


StartRouter = Callable[..., Awaitable[RouterHandle]]


@pytest.fixture
async def start_router() -> AsyncIterator[StartRouter]:
    handles: list[RouterHandle] = []

    async def start(
        config: dict[str, Any] | SwitchboardConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: StateStore | None = None,
    ) -> RouterHandle:
        # A config file's text is given parsed (`parse_config`: `${ENV}` read), as it is.
        if not isinstance(config, SwitchboardConfig):
            # A config without `auth` runs open: only the authentication tests care about callers.
            config = SwitchboardConfig.model_validate({"auth": {"open": True}, **config})
        runtime = await Runtime.create(config, clock=clock, store=store)
        server = RouterServer(runtime, port=0)
        await server.start()
        channel = grpc.aio.insecure_channel(server.address)
        handle = RouterHandle(server, channel)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.channel.close()
        await _after_its_watchers_left(handle.server)
        await handle.server.shutdown(grace=0.5)


async def _after_its_watchers_left(server: RouterServer) -> None:
    """Until the health watches of the clients closed before this router (the edge, a
    RouterClient) have ended at the router, which learns it a few loop turns after their close.
    A stop with none left skips `server.drain_delay_s`, as in production: otherwise every
    router a test had an edge on waited its 0.25 s. A watch still open after as long (a client
    left open) is drained as a production stop would."""

    async def left() -> bool:
        return not server.health_watchers

    with contextlib.suppress(AssertionError):
        await eventually(left, within=0.25, what="the router's watchers leaving")


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(base_config(fake.base_url))


@pytest.fixture(params=RELEASE_ERRORS, ids=RELEASE_IDS)
async def failing_router(
    request: pytest.FixtureRequest, fake: FakeUpstream, start_router: StartRouter
) -> RouterHandle:
    """A router on the memory store (it releases inline) whose releases raise the error given
    (tests/release_failures.py)."""
    return await start_router(base_config(fake.base_url), store=FailingReleases(request.param))


@pytest.fixture
async def start_edge() -> AsyncIterator[Callable[..., Awaitable[Edge]]]:
    """Start the real edge (uvicorn on loopback) in front of a router; stopped at teardown."""
    edges: list[Edge] = []

    async def start(
        router: RouterHandle, clock: Clock = SYSTEM_CLOCK, in_process: bool = False, **settings: Any
    ) -> Edge:
        """`settings`: EdgeSettings fields; `clock`: the edge's (`created_at` of its answers);
        `in_process`: the edge calls the router in-process (`switchboard serve`)."""
        edge = await start_edge_server(
            EdgeSettings(router_target=router.server.address, **settings),
            clock=clock,
            local=router.server.in_process if in_process else None,
        )
        edges.append(edge)
        return edge

    yield start
    for edge in edges:
        await stop_edge(edge)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    """A test CA (`ca`), its `server` and `client` certificates, and a `rogue` client
    certificate from another CA (tests/pki.py)."""
    return issue_pki(tmp_path)
