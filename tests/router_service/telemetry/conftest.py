"""In-memory telemetry for a test: servers and clients started inside it are traced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router_service.telemetry.testing import TelemetryCapture


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture
