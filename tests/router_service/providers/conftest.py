"""The `lean` fixture: LeanTransports built on demand and closed at teardown; `trusting`: each
upstream transport, trusting a test's own CA; `move_loop_clock`: the running loop's clock moved
on; `clock`: one ManualClock for a router and the fake's Entra ID and identity endpoints."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.providers._aiohttp_transport import AiohttpTransport
from router_service.providers._httpx_connect import httpx_transport
from router_service.providers._lean_transport import LeanTransport
from tests.loop_clock import move_loop_clock
from tests.router_service.providers.lean_harness import MakeTransport

__all__ = ["move_loop_clock"]  # the fixture, used by this package's tests


@pytest.fixture
def clock(fake: FakeUpstream) -> ManualClock:
    """One clock for the router and the token endpoints: tokens expire when the test says."""
    manual = ManualClock()
    fake.state.entra.clock = manual.now
    return manual


@pytest.fixture
async def lean() -> AsyncIterator[MakeTransport]:
    """Build LeanTransports; each is closed at teardown."""
    made: list[LeanTransport] = []

    def make(
        max_connections: int = 4,
        max_keepalive_connections: int | None = None,
        keepalive_expiry_s: float = 5.0,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> LeanTransport:
        transport = LeanTransport(
            max_connections=max_connections,
            max_keepalive_connections=(
                max_connections if max_keepalive_connections is None else max_keepalive_connections
            ),
            keepalive_expiry_s=keepalive_expiry_s,
            verify=verify,
            clock=clock,
        )
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.aclose()


@pytest.fixture(params=["lean", "aiohttp", "httpx"])
def trusting(
    request: pytest.FixtureRequest,
) -> Callable[[ssl.SSLContext], httpx.AsyncBaseTransport]:
    """Each upstream transport as `create_http_client` makes it, trusting the test's own CA."""

    def make(verify: ssl.SSLContext) -> httpx.AsyncBaseTransport:
        if request.param == "lean":
            return LeanTransport(
                max_connections=4,
                max_keepalive_connections=4,
                keepalive_expiry_s=5.0,
                verify=verify,
            )
        if request.param == "aiohttp":
            return AiohttpTransport(max_connections=4, keepalive_expiry_s=5.0, verify=verify)
        return httpx_transport(httpx.Limits(max_connections=4), verify=verify)

    return make
