"""A MediaStream call in the router's metrics, scraped from its Prometheus listener: a stream
(as a ChatStream call is), and one the upstream cut (its caller told by an error event) is no
OK request."""

from __future__ import annotations

from clients import RouterClient
from clients.switchboard.v1 import media_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.server.test_media_stream_rpc import streamed
from tests.router_service.telemetry.test_background_metrics import _scraped
from tests.router_service.telemetry.test_metrics import value

IMAGES = media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS


async def test_a_media_stream_cut_mid_way_is_a_failed_stream_in_the_metrics(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    request = streamed(IMAGES, {"prompt": "a fox", "n": 2, "stream": True})
    async with RouterClient(router.server.address) as client:
        async with client.media_stream(request, timeout=10) as stream:
            whole = [message.WhichOneof("event") async for message in stream]
        fake.state.set_scenario(Scenario(truncate_after_chunks=1))
        async with client.media_stream(request, timeout=10) as stream:
            cut = [message async for message in stream]
    assert whole[-1] == "summary"
    assert cut[-1].error.code == "truncated"
    found = await _scraped()
    images = {"gen_ai_operation_name": "images.generations", "switchboard_stream": "true"}
    assert value(found, "switchboard_requests_total", **images) == 2
    assert value(found, "switchboard_requests_total", switchboard_outcome="OK", **images) == 1
