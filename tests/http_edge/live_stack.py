"""The whole stack for synchronous callers (schemathesis, hypothesis, the README's snippets): fake
upstream, a router and the edge, on loopback, running on an event loop of their own in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, TypeVar

import httpx

from router_service.clock import SYSTEM_CLOCK, Clock
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
AUTH = {"authorization": f"Bearer {CALLER_KEY}"}
STARTUP_TIMEOUT_S = 30

CALL_TIMEOUT_S = 10  # a hang fails the test instead of stalling it
NORMAL = {"model": "chain", "messages": [{"role": "user", "content": "still there?"}]}


def assert_answered_well(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and "Traceback" not in error["message"]
        assert isinstance(error["type"], str)


def assert_still_serves(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=NORMAL, headers=AUTH)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["choices"][0]["message"]["content"] == "Echo: still there?"


# The stack's config, made once the fake upstream listens (its URL goes into the providers). The
# router listens on a free port whatever `server.port` says; the edge likewise, with its
# `edge:` section's other settings.
ConfigFor = Callable[[FakeUpstream], SwitchboardConfig]


def guarded_config(fake: FakeUpstream) -> SwitchboardConfig:
    """The suite's base config with one caller (CALLER_KEY) and small limits at the edge."""
    config = base_config(
        fake.base_url,
        auth={"clients": [client("fuzz", CALLER_KEY)]},
        server={"port": 0, "max_tokens_ceiling": 4096},
        edge={"max_body_bytes": MAX_BODY_BYTES, "request_timeout_s": 10},
    )
    return SwitchboardConfig.model_validate(config)


class LiveStack:
    def __init__(self, config_for: ConfigFor = guarded_config, clock: Clock = SYSTEM_CLOCK) -> None:
        self.base_url = ""  # the edge's
        self.router_target = ""
        self.router: RouterServer | None = None
        self.loop = asyncio.new_event_loop()
        self._config_for = config_for
        self._clock = clock
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-stack")
        self._resources = AsyncExitStack()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = STARTUP_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        fake = await self._resources.enter_async_context(FakeUpstream())
        config = self._config_for(fake)
        runtime = await Runtime.create(config, clock=self._clock)
        router = await self._resources.enter_async_context(RouterServer(runtime, port=0))
        edge = await start_edge(config.edge.model_copy(update={"router_target": router.address}))
        self._resources.push_async_callback(stop_edge, edge)
        self.base_url = edge.base_url
        self.router, self.router_target = router, router.address

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
