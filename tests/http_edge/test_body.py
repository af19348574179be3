"""Reading request bodies (`http_edge/_body.py`) on a real uvicorn edge: a client that goes away
mid-upload is a quiet 499 (measured like any request, no traceback, no 500), and the router is
never called."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually
from tests.http_edge.harness import EdgeFactory, StubRouter

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture(tracing=False) as capture:
        yield capture


async def test_a_client_gone_mid_upload_is_a_quiet_499(
    captured: TelemetryCapture,
    stub: StubRouter,
    start_edge: EdgeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    edge = await start_edge()
    _, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 1000\r\n\r\n{"model"'
    )
    await writer.drain()

    async def reading() -> bool:  # the request has reached the app, which waits for the rest
        return bool(edge.server.server_state.tasks)

    await eventually(reading, within=15, what="the request being read")
    writer.close()
    await writer.wait_closed()

    async def answered() -> bool:
        return not edge.server.server_state.tasks

    await eventually(answered, within=15, what="the request's task ending")
    statuses = [
        attributes.get("http.response.status_code")
        for attributes, _ in captured.points("http.server.request.duration")
    ]
    assert statuses == [499]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert stub.calls == []
