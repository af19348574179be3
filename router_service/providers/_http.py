"""The one boundary where httpx errors become Outcomes, and the shared client factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from router_service.config import HttpConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._aiohttp_transport import AiohttpTransport
from router_service.telemetry import traced_transport


def create_http_client(config: HttpConfig) -> httpx.AsyncClient:
    """One client per process: connection reuse across every provider and request."""
    limits = httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.max_keepalive_connections,
        keepalive_expiry=config.keepalive_expiry_s,
    )
    inner: httpx.AsyncBaseTransport
    if config.transport == "aiohttp":
        inner = AiohttpTransport(
            max_connections=config.max_connections, keepalive_expiry_s=config.keepalive_expiry_s
        )
    else:
        inner = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # Per-request timeouts are set by each adapter call; these are only the defaults.
    # The client's aclose closes the transport (and with it aiohttp's session).
    transport = traced_transport(inner)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60.0), trust_env=False)


@contextmanager
def map_transport_errors(*, started: bool = False) -> Iterator[None]:
    """Translate httpx transport errors. `started`: the response had begun arriving, so a broken
    connection is a mid-response failure rather than a failure to reach the upstream."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise UpstreamFailure(Outcome.CONNECT_FAILED, "connect timeout") from exc
    except httpx.ConnectError as exc:
        raise UpstreamFailure(Outcome.CONNECT_FAILED, f"connect failed: {_short(exc)}") from exc
    except httpx.TimeoutException as exc:
        outcome = Outcome.STALLED if started else Outcome.FIRST_CHUNK_TIMEOUT
        raise UpstreamFailure(outcome, f"upstream timeout: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        # Reset or closed connections, protocol errors: the upstream failed, not the caller.
        raise UpstreamFailure(
            Outcome.UPSTREAM_ERROR, f"connection error: {type(exc).__name__}"
        ) from exc


def _short(exc: Exception) -> str:
    return str(exc)[:120] or type(exc).__name__
