"""A media call's trace (RouterService.Media): the request span named by its operation, an
attempt span per upstream attempt, each its HTTP call's, as a chat's."""

from __future__ import annotations

from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.telemetry.spans import attrs, ended

SERVER_MEDIA = "switchboard.v1.RouterService/Media"


async def test_a_speech_call_fails_over_in_one_trace(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    params = media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_SPEECH,
        model="chain",
        params_json='{"input": "hello", "voice": "alloy"}',
    )
    answer = await router.stub.Media(pb.MediaRequest(params=params))
    assert answer.route.deployment == "beta/model-b"

    trace = await ended(captured, SERVER_MEDIA)
    request = trace.one(SERVER_MEDIA)  # the call's SERVER span is the request's
    got = attrs(request)
    assert got["gen_ai.operation.name"] == "audio.speech"
    assert (got["switchboard.deployment"], got["switchboard.attempts"]) == ("beta/model-b", 2)
    assert got["switchboard.outcome"] == "OK"
    failed, served = trace.children(request)
    assert (failed.name, served.name) == ("audio.speech model-a", "audio.speech model-b")
    assert attrs(failed)["switchboard.attempt.outcome"] == "UPSTREAM_ERROR"
    assert trace.children(served) == []
    assert attrs(served)["url.full"] == f"{fake.base_url}/audio/speech"
