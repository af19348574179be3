"""The whole stack for synchronous callers (schemathesis, hypothesis): fake upstream, a guarded
router and the edge, on loopback, running on an event loop of their own in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, TypeVar

from http_edge import EdgeSettings
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer
from tests.conftest import base_config
from tests.http_edge.harness import start_edge, stop_edge
from tests.router_service.auth.helpers import client

T = TypeVar("T")

CALLER_KEY = "sk-fuzz-caller-0123456789"
MAX_BODY_BYTES = 256 * 1024
STARTUP_TIMEOUT_S = 30


class LiveStack:
    def __init__(self) -> None:
        self.base_url = ""
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-stack")
        self._resources = AsyncExitStack()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = STARTUP_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        fake = await self._resources.enter_async_context(FakeUpstream())
        config = base_config(
            fake.base_url,
            auth={"clients": [client("fuzz", CALLER_KEY)]},
            server={"port": 0, "max_tokens_ceiling": 4096},
        )
        runtime = await Runtime.create(SwitchboardConfig.model_validate(config))
        router = await self._resources.enter_async_context(RouterServer(runtime, port=0))
        settings = EdgeSettings(
            router_target=router.address, max_body_bytes=MAX_BODY_BYTES, request_timeout_s=10
        )
        edge = await start_edge(settings)
        self._resources.push_async_callback(stop_edge, edge)
        self.base_url = edge.base_url

    @contextmanager
    def running(self) -> Iterator[LiveStack]:
        self._thread.start()
        try:
            self.run(self._start())
            yield self
        finally:
            try:
                self.run(self._resources.aclose())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=STARTUP_TIMEOUT_S)
                self.loop.close()
