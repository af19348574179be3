"""Moderations, images, speech and transcriptions (RouterService.Media) against every adapter
kind: the kinds that speak OpenAI's endpoints (openai; azure, with Entra ID keys too, but for
moderations) serve them at their own paths; every other kind is passed over without a key
leased or a request sent, to the group's OpenAI backup."""

from __future__ import annotations

import pytest

from clients.switchboard.v1 import media_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conformance.profiles import Profile
from tests.conftest import RouterHandle

OPERATIONS = {
    "moderations": (media_pb2.MEDIA_OPERATION_MODERATIONS, '{"input": "hi"}'),
    "images/generations": (media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS, '{"prompt": "a fox"}'),
    "audio/speech": (media_pb2.MEDIA_OPERATION_AUDIO_SPEECH, '{"input": "hi", "voice": "alloy"}'),
    "audio/transcriptions": (media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS, '{"language": "en"}'),
}
AUDIO = media_pb2.MediaFile(data=b"RIFF....", filename="a.wav", content_type="audio/wav")


def serves(profile: Profile, path: str) -> bool:
    if profile.kind == "openai":
        return True
    return profile.kind == "azure" and path != "moderations"


@pytest.mark.parametrize("path", OPERATIONS)
async def test_a_kind_serves_the_operation_or_is_passed_over(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, path: str
) -> None:
    operation, fields = OPERATIONS[path]
    params = media_pb2.MediaParams(operation=operation, model="chain", params_json=fields)
    if path == "audio/transcriptions":
        params.file.CopyFrom(AUDIO)
    answer = await router.stub.Media(pb.MediaRequest(params=params))
    assert answer.result.body
    sent = [record.path for record in fake.state.calls() if not record.path.endswith("/token")]
    if serves(profile, path):
        assert answer.route.deployment == "up/m-up"
        expected = "/openai/deployments/m-up/" if profile.kind == "azure" else "/v1/"
        assert sent == [expected + path]
        return
    assert answer.route.deployment == "backup/m-backup"
    first = answer.route.attempts[0]
    assert (first.deployment, first.outcome) == ("up/m-up", routing_pb2.OUTCOME_UNSUPPORTED_INPUT)
    assert first.key_fingerprint == ""  # passed over before a key was leased
    assert sent == [f"/v1/{path}"]  # the backup's call alone
