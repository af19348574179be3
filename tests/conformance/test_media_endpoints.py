"""Moderations, images (generations, edits, variations), speech, transcriptions and translations
(RouterService.Media) against every adapter kind: the kinds that speak OpenAI's endpoints
(openai; azure, with Entra ID keys too, but for moderations and image variations) serve them at
their own paths; every other kind is passed over without a key leased or a request sent, to the
group's OpenAI backup."""

from __future__ import annotations

from typing import Any

import pytest

from clients.switchboard.v1 import media_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._media import PNG_1X1
from tests.conformance.profiles import Profile
from tests.conftest import RouterHandle

AUDIO = media_pb2.MediaFile(data=b"RIFF....", filename="a.wav", content_type="audio/wav")
IMAGE = media_pb2.MediaFile(data=PNG_1X1, filename="a.png", content_type="image/png")
OPERATIONS = {
    "moderations": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_MODERATIONS, params_json='{"input": "hi"}'
    ),
    "images/generations": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS, params_json='{"prompt": "a fox"}'
    ),
    "images/edits": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_IMAGE_EDITS,
        params_json='{"prompt": "a hat"}',
        files=[
            media_pb2.MediaFile(data=PNG_1X1, filename="a.png", field="image[]"),
            media_pb2.MediaFile(data=PNG_1X1, filename="b.png", field="image[]"),
            media_pb2.MediaFile(data=PNG_1X1, filename="m.png", field="mask"),
        ],
    ),
    "images/variations": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS, file=IMAGE
    ),
    "audio/speech": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_SPEECH,
        params_json='{"input": "hi", "voice": "alloy"}',
    ),
    "audio/transcriptions": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS,
        params_json='{"language": "en"}',
        file=AUDIO,
    ),
    "audio/translations": media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS, file=AUDIO
    ),
}


def serves(profile: Profile, path: str) -> bool:
    if profile.kind == "openai":
        return True
    return profile.kind == "azure" and path not in ("moderations", "images/variations")


def uploads_of(params: media_pb2.MediaParams) -> list[tuple[str, str]]:
    """(form field, file name) of each upload of `params`, as the upstream should get them."""
    if params.files:
        return [(file.field, file.filename) for file in params.files]
    if params.HasField("file"):
        field = (
            "image" if params.operation == media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS else "file"
        )
        return [(field, params.file.filename)]
    return []


def uploads(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(form field, file name) of each file the fake upstream read (its `{filename, ...}`)."""
    found = []
    for field, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "filename" in item:
                found.append((field, item["filename"]))
    return found


@pytest.mark.parametrize("path", OPERATIONS)
async def test_a_kind_serves_the_operation_or_is_passed_over(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, path: str
) -> None:
    params = media_pb2.MediaParams(model="chain")
    params.MergeFrom(OPERATIONS[path])
    answer = await router.stub.Media(pb.MediaRequest(params=params))
    assert answer.result.body
    calls = [record for record in fake.state.calls() if not record.path.endswith("/token")]
    assert uploads(calls[-1].body) == uploads_of(params)  # each file, under its field
    sent = [record.path for record in calls]
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
