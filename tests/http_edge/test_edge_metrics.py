"""The edge's HTTP server metrics (`_metrics.HttpServerMetrics`) as a scrape shows them: one
duration sample per request labelled by route template and status (hot routes, routed ones,
failures, unknown URLs without a route), nothing for probes and scrapes, and no request left
counted as active."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from clients import ErrorDetails
from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.telemetry.testing import TelemetryCapture
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture(tracing=False) as capture:
        yield capture


def durations(captured: TelemetryCapture) -> dict[tuple[Any, ...], int]:
    """Requests counted in http.server.request.duration by (route, status, error type)."""
    found: dict[tuple[Any, ...], int] = {}
    for attributes, point in captured.points("http.server.request.duration"):
        key = (
            attributes.get("http.route"),
            attributes.get("http.response.status_code"),
            attributes.get("error.type"),
        )
        assert attributes["http.request.method"] in ("GET", "POST")
        assert attributes["url.scheme"] == "http"
        found[key] = found.get(key, 0) + point.count
    return found


async def test_requests_are_measured_by_route_and_status(
    captured: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    calls = 0

    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        nonlocal calls
        calls += 1
        if calls == 2:
            details = ErrorDetails(
                code=grpc.StatusCode.UNAVAILABLE, message="no upstream", reason="UNAVAILABLE"
            )
            await abort_with(context, details)
        return rs.ChatResponse()

    stub.on_chat = on_chat
    stub.on_list_models = lambda request, context: _models()
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/chat/completions", json=BODY)).status_code == 200
        assert (await http.post("/v1/chat/completions", json=BODY)).status_code == 503
        assert (await http.get("/v1/models/some-model")).status_code == 404
        assert (await http.get("/no/such/url")).status_code == 404
        for probe in ("/healthz", "/metrics", "/admin"):
            await http.get(probe)
    assert durations(captured) == {
        ("/v1/chat/completions", 200, None): 1,
        ("/v1/chat/completions", 503, "503"): 1,
        ("/v1/models/{model_id:path}", 404, None): 1,
        (None, 404, None): 1,  # an unknown URL: no route label, never the raw path
    }
    active = [point.value for _, point in captured.points("http.server.active_requests")]
    assert active and all(value == 0 for value in active)


async def _models() -> rs.ListModelsResponse:
    return rs.ListModelsResponse(models=[rs.ModelInfo(id="other")])
