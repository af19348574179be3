"""In-memory telemetry for a test: servers and clients started inside it are traced."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from router_service.telemetry.testing import TelemetryCapture
from tests.replicas.redis_fixtures import redis_prefix, redis_url
from tests.router_service.telemetry.otlp_receiver import Receiver, start_receiver

__all__ = ["captured", "receiver", "redis_prefix", "redis_url"]  # the Redis fixtures re-exported


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real OTLP/gRPC collector on loopback (`receiver.endpoint`)."""
    async with start_receiver() as found:
        yield found
