"""Fixtures for the edge tests; the stub router and the edge handle are in `harness`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from clients import RouterClient
from http_edge import EdgeSettings
from tests.http_edge.harness import (
    Edge,
    EdgeFactory,
    StubRouter,
    serve_stub_router,
    stop_edge,
)
from tests.http_edge.harness import start_edge as start_edge_on
from tests.http_edge.live_stack import CALL_TIMEOUT_S, LiveStack


@pytest.fixture
async def stub() -> AsyncIterator[StubRouter]:
    async with serve_stub_router() as router:
        yield router


@pytest.fixture
async def start_edge(stub: StubRouter) -> AsyncIterator[EdgeFactory]:
    """Start edges against the stub; keyword arguments override `EdgeSettings` fields, and
    `client` is injected into the app (which then leaves it open at shutdown)."""
    edges: list[Edge] = []

    async def start(client: RouterClient | None = None, **overrides: Any) -> Edge:
        settings = EdgeSettings(**{"router_target": stub.target, **overrides})
        edges.append(await start_edge_on(settings, client))
        return edges[-1]

    try:
        yield start
    finally:
        for edge in edges:
            await stop_edge(edge)


@pytest.fixture
async def edge(start_edge: EdgeFactory) -> Edge:
    return await start_edge()


@pytest.fixture
async def http(edge: Edge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def sdk(edge: Edge) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-test", max_retries=0, timeout=10
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="module")
def live_stack() -> Iterator[LiveStack]:
    """The whole stack (`live_stack`), one per test module, for synchronous callers."""
    with LiveStack().running() as live:
        yield live


@pytest.fixture(scope="module")
def live_http(live_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_stack.base_url, timeout=CALL_TIMEOUT_S) as client:
        yield client
