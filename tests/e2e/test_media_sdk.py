"""Moderations, images (generations, edits, variations), speech, transcriptions and translations
as a user sees them: the official `openai` SDK → the HTTP edge → the router → the fake upstream,
through the same groups, key pools and failover as chat."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._media import FLAGGED_WORD, PNG_1X1, speech_bytes
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge

AUDIO = b"\xff\xfb" + bytes(range(256)) * 8  # what the SDK uploads: any bytes will do


def config(fake: FakeUpstream) -> dict[str, Any]:
    """Two OpenAI providers, an Azure resource and Claude, and a group per operation."""
    return {
        "providers": {
            "alpha": {"base_url": fake.base_url, "keys": ["sk-alpha-1", "sk-alpha-2"]},
            "beta": {"base_url": fake.base_url, "keys": ["sk-beta-1"]},
            "az": {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]},
            "claude": {
                "kind": "anthropic",
                "base_url": fake.base_url,
                "keys": ["sk-ant"],
                "api_version": "2023-06-01",
            },
        },
        "models": {
            # Claude and Azure have no moderations endpoint: passed over to alpha.
            "moderator": {
                "deployments": [
                    {"provider": "claude", "model": "claude-x"},
                    {"provider": "az", "model": "mod-prod"},
                    {"provider": "alpha", "model": "omni-moderation-latest"},
                ]
            },
            "painter": {
                "deployments": [
                    {"provider": "alpha", "model": "gpt-image-1"},
                    {"provider": "az", "model": "image-prod"},
                ]
            },
            "voice": {
                "deployments": [
                    {"provider": "az", "model": "tts-prod"},
                    {"provider": "beta", "model": "tts-1"},
                ]
            },
            "scribe": {
                "deployments": [
                    {"provider": "alpha", "model": "whisper-1"},
                    {"provider": "beta", "model": "gpt-4o-transcribe"},
                ]
            },
            "translator": {
                "deployments": [
                    {"provider": "az", "model": "whisper-prod"},
                    {"provider": "alpha", "model": "whisper-1"},
                ]
            },
            # Azure has no image variations: passed over to alpha.
            "varier": {
                "deployments": [
                    {"provider": "az", "model": "dalle-prod"},
                    {"provider": "alpha", "model": "dall-e-2"},
                ]
            },
            "azure-only": {"deployments": [{"provider": "az", "model": "image-prod"}]},
            "claude-only": {"deployments": [{"provider": "claude", "model": "claude-x"}]},
        },
        "server": {"port": 0},
    }


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture
async def sdk(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


async def test_a_moderation_passes_over_kinds_without_the_endpoint(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.moderations.with_raw_response.create(
        model="moderator", input=["a quiet day", f"I will {FLAGGED_WORD} the lights"]
    )
    moderation = raw.parse()
    assert [r.flagged for r in moderation.results] == [False, True]
    assert moderation.results[1].categories.violence is True
    # Claude and Azure were passed over without a call; alpha answered.
    assert raw.headers["x-switchboard-deployment"] == "alpha/omni-moderation-latest"
    assert raw.headers["x-switchboard-attempts"] == "3"
    assert [r.path for r in fake.state.calls()] == ["/v1/moderations"]
    assert fake.state.calls()[0].body["model"] == "omni-moderation-latest"


async def test_an_image_is_generated_with_the_upstream_model(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.images.with_raw_response.generate(model="painter", prompt="a red fox", n=2)
    images = raw.parse()
    assert [base64.b64decode(i.b64_json or "") for i in images.data or []] == [PNG_1X1] * 2
    assert images.usage is not None and images.usage.input_tokens == 3
    assert raw.headers["x-switchboard-deployment"] == "alpha/gpt-image-1"
    assert fake.state.last(path="/v1/images/generations").body == {  # type: ignore[union-attr]
        "prompt": "a red fox",
        "n": 2,
        "model": "gpt-image-1",
    }


async def test_an_image_url_from_azure_after_a_failing_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), model="gpt-image-1")
    raw = await sdk.images.with_raw_response.generate(
        model="painter", prompt="a fox", response_format="url"
    )
    assert [image.url for image in raw.parse().data or []] == [
        f"https://fake-upstream.invalid/images/{fake.state.calls()[-1].seq}.png"
    ]
    assert raw.headers["x-switchboard-deployment"] == "az/image-prod"
    record = fake.state.last(path="/openai/deployments/image-prod/images/generations")
    assert record is not None and record.key == "az-key"
    assert record.query["api-version"] == "2024-10-21"


async def test_speech_is_the_audio_bytes(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    response = await sdk.audio.speech.create(
        model="voice", voice="alloy", input="hello there", response_format="wav"
    )
    content_type, audio = speech_bytes("hello there", "wav")
    assert response.read() == audio
    assert response.response.headers["content-type"] == content_type
    assert response.response.headers["x-switchboard-deployment"] == "az/tts-prod"
    assert fake.state.last(model="tts-prod").path == "/openai/deployments/tts-prod/audio/speech"  # type: ignore[union-attr]


async def test_speech_fails_over_from_a_rate_limited_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), key="az-key")
    response = await sdk.audio.speech.create(model="voice", voice="alloy", input="hi")
    assert response.read() == speech_bytes("hi", "mp3")[1]
    assert response.response.headers["x-switchboard-deployment"] == "beta/tts-1"
    assert response.response.headers["x-switchboard-attempts"] == "2"


async def test_a_transcription_uploads_the_file(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.audio.transcriptions.with_raw_response.create(
        model="scribe", file=("talk.mp3", AUDIO, "audio/mpeg"), language="en", temperature=0.2
    )
    assert raw.parse().text == f"talk.mp3: {len(AUDIO)} bytes of audio/mpeg"
    assert raw.headers["x-switchboard-deployment"] == "alpha/whisper-1"
    sent = fake.state.last(path="/v1/audio/transcriptions")
    assert sent is not None and sent.body["model"] == "whisper-1"
    assert sent.body["language"] == "en" and sent.body["temperature"] == "0.2"


async def test_a_diarization_sends_its_speaker_samples_whole(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """gpt-4o-transcribe-diarize's known speakers are text fields, each a data URL of 2 to 10
    seconds of audio (hundreds of KB): the edge refused any field over 128 KiB."""
    sample = "data:audio/wav;base64," + base64.b64encode(bytes(400_000)).decode()
    transcript = await sdk.audio.transcriptions.create(
        model="scribe",
        file=("call.wav", AUDIO, "audio/wav"),
        known_speaker_names=["agent", "customer"],
        known_speaker_references=[sample, sample],
    )
    assert transcript.text.startswith("call.wav")
    sent = fake.state.last(path="/v1/audio/transcriptions")
    assert sent is not None and sent.body["known_speaker_references[]"] == [sample, sample]


async def test_a_transcription_as_text_from_the_next_key(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A key that is rate limited gives way to the provider's other key, the upload resent."""
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), key="sk-alpha-1")
    text = await sdk.audio.transcriptions.create(
        model="scribe", file=("a.wav", b"RIFF0000", "audio/wav"), response_format="text"
    )
    assert text.strip() == "a.wav: 8 bytes of audio/wav"
    keys = [r.key for r in fake.state.calls(path="/v1/audio/transcriptions")]
    assert sorted(keys) == ["sk-alpha-1", "sk-alpha-2"]


async def test_a_group_of_kinds_without_the_endpoint_is_a_bad_request(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.moderations.create(model="claude-only", input="hello")
    assert "anthropic offers no /moderations API" in refused.value.message
    assert fake.state.calls() == []


async def test_an_upstream_refusal_is_the_callers_error(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.images.generate(model="painter", prompt="")
    assert "'prompt' is a required property" in refused.value.message


async def test_a_translation_uploads_the_file_to_azure(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.deprecated_call():  # OpenAI shuts the endpoint down on 2027-02-26
        raw = await sdk.audio.translations.with_raw_response.create(
            model="translator", file=("talk.mp3", AUDIO, "audio/mpeg"), prompt="a talk"
        )
    assert raw.parse().text == f"talk.mp3: {len(AUDIO)} bytes of audio/mpeg, in English"
    assert raw.headers["x-switchboard-deployment"] == "az/whisper-prod"
    sent = fake.state.last(path="/openai/deployments/whisper-prod/audio/translations")
    assert sent is not None and sent.key == "az-key"
    assert (sent.body["prompt"], sent.body["model"]) == ("a talk", "whisper-prod")
    assert sent.query["api-version"] == "2024-10-21"


async def test_a_translation_as_text_fails_over_to_the_next_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), key="az-key")
    with pytest.deprecated_call():
        raw = await sdk.audio.translations.with_raw_response.create(
            model="translator", file=("a.wav", b"RIFF0000", "audio/wav"), response_format="text"
        )
    assert raw.parse().strip() == "a.wav: 8 bytes of audio/wav, in English"
    assert raw.headers["x-switchboard-deployment"] == "alpha/whisper-1"
    assert raw.headers["x-switchboard-attempts"] == "2"
    sent = fake.state.last(path="/v1/audio/translations")
    assert sent is not None and sent.body["file"]["filename"] == "a.wav"


async def test_an_edit_sends_every_image_and_the_mask(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.images.with_raw_response.edit(
        model="painter",
        image=[("fox.png", PNG_1X1, "image/png"), ("hat.png", PNG_1X1 + b"\0", "image/png")],
        mask=("mask.png", PNG_1X1, "image/png"),
        prompt="the fox wears the hat",
        n=2,
    )
    images = raw.parse()
    assert [base64.b64decode(i.b64_json or "") for i in images.data or []] == [PNG_1X1] * 2
    assert images.usage is not None and images.usage.input_tokens == 5
    assert raw.headers["x-switchboard-deployment"] == "alpha/gpt-image-1"
    sent = fake.state.last(path="/v1/images/edits")
    assert sent is not None
    size = len(PNG_1X1)
    assert sent.body["image[]"] == [
        {"filename": "fox.png", "size": size, "content_type": "image/png"},
        {"filename": "hat.png", "size": size + 1, "content_type": "image/png"},
    ]
    assert sent.body["mask"] == {"filename": "mask.png", "size": size, "content_type": "image/png"}
    assert (sent.body["model"], sent.body["n"]) == ("gpt-image-1", "2")


async def test_an_edit_of_one_image_from_azure_after_a_failing_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), model="gpt-image-1")
    raw = await sdk.images.with_raw_response.edit(
        model="painter", image=("fox.png", PNG_1X1, "image/png"), prompt="a hat"
    )
    assert len(raw.parse().data or []) == 1
    assert raw.headers["x-switchboard-deployment"] == "az/image-prod"
    sent = fake.state.last(path="/openai/deployments/image-prod/images/edits")
    assert sent is not None and sent.body["image"]["filename"] == "fox.png"
    assert "mask" not in sent.body


async def test_a_variation_passes_over_azure(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    with pytest.deprecated_call():  # OpenAI has retired the endpoint; others may serve it
        raw = await sdk.images.with_raw_response.create_variation(
            model="varier", image=("fox.png", PNG_1X1, "image/png"), n=3, response_format="url"
        )
    assert len(raw.parse().data or []) == 3
    assert raw.headers["x-switchboard-deployment"] == "alpha/dall-e-2"
    assert raw.headers["x-switchboard-attempts"] == "2"
    [sent] = fake.state.calls()  # Azure passed over without a call
    assert (sent.path, sent.model) == ("/v1/images/variations", "dall-e-2")
    assert sent.body["image"]["filename"] == "fox.png"


async def test_a_variation_of_a_group_without_the_endpoint_is_a_bad_request(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as refused, pytest.deprecated_call():
        await sdk.images.create_variation(model="azure-only", image=("a.png", PNG_1X1))
    assert "azure offers no /images/variations API" in refused.value.message
    assert fake.state.calls() == []


async def test_an_edit_the_edge_refuses_never_reaches_the_router(
    sdk: openai.AsyncOpenAI, router: RouterHandle, fake: FakeUpstream
) -> None:
    """Two masks (the SDK sends one; a hand-made form may not): the edge's 400, no call."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.post(
            "/images/edits",
            cast_to=object,
            files=[("image", ("a.png", PNG_1X1)), ("mask", ("m.png", b"1")), ("mask", ("n", b"2"))],
            body={"model": "painter", "prompt": "x"},
            options={"headers": {"Content-Type": "multipart/form-data"}},
        )
    assert (refused.value.param, refused.value.code) == ("mask", "invalid_argument")
    assert fake.state.calls() == []


async def test_an_edit_of_images_by_reference_is_json(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """OpenAI's image edit also takes a JSON body naming its images (`images`: `image_url`s,
    `file_id`s; a `mask` as one): it was refused as not a form."""
    images: Any = [{"image_url": "https://img.example/fox.png"}, {"file_id": "file-hat"}]
    body: Any = {
        "model": "painter",
        "prompt": "the fox wears the hat",
        "images": images,
        "mask": {"file_id": "file-mask"},
    }
    answer: Any = await sdk.post("/images/edits", cast_to=object, body=body)
    assert len(answer["data"]) == 1
    sent = fake.state.last(path="/v1/images/edits")
    assert sent is not None
    assert (sent.body["model"], sent.body["images"]) == ("gpt-image-1", images)
    assert sent.body["mask"] == {"file_id": "file-mask"}
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.post("/images/edits", cast_to=object, body={**body, "images": []})
    assert refused.value.param == "images"
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.post("/images/edits", cast_to=object, body={**body, "images": [{"url": "x"}]})
    assert refused.value.param == "images[0]"
