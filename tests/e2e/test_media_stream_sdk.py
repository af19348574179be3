"""Streamed speech, transcriptions and images as a user sees them: the official `openai` SDK →
the HTTP edge → the router (MediaStream) → the fake upstream, with OpenAI's wire formats (audio
as it is made, `speech.audio.*`, `transcript.text.*`, `image_generation.*` / `image_edit.*`),
failover before the first byte, an Azure deployment's refusal, errors mid-stream, and a caller
who leaves closing the upstream call."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._media import PNG_1X1, speech_bytes
from tests.conftest import RouterHandle, StartRouter

pytestmark = pytest.mark.timeout(60)

AUDIO = b"RIFF" + bytes(range(64))


def config(fake: FakeUpstream) -> dict[str, Any]:
    return {
        "providers": {
            "alpha": {"base_url": fake.base_url, "keys": ["sk-alpha-1"]},
            "beta": {"base_url": fake.base_url, "keys": ["sk-beta-1"]},
            "az": {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]},
        },
        "models": {
            # Azure streams speech's audio, not its events: `sse` passes it over to beta.
            "voice": {
                "deployments": [
                    {"provider": "az", "model": "tts-prod"},
                    {"provider": "beta", "model": "gpt-4o-mini-tts"},
                ]
            },
            "scribe": {"deployments": [{"provider": "alpha", "model": "gpt-4o-transcribe"}]},
            "painter": {
                "deployments": [
                    {"provider": "alpha", "model": "gpt-image-1"},
                    {"provider": "beta", "model": "gpt-image-1-mini"},
                ]
            },
            "azure-painter": {"deployments": [{"provider": "az", "model": "image-prod"}]},
        },
        "server": {"port": 0},
    }


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """This file's router: the `sdk` fixture's (tests/e2e/conftest.py) edge is in front of it."""
    return await start_router(config(fake))


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event of an event-stream body."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines.get("event", ""), orjson.loads(lines["data"])))
    return events


async def test_speech_arrives_as_it_is_made_and_leaving_closes_the_upstream(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    kind, audio = speech_bytes("hello there world", "wav")
    async with sdk.audio.speech.with_streaming_response.create(
        model="voice", voice="alloy", input="hello there world", response_format="wav"
    ) as response:
        assert response.headers["content-type"] == kind
        assert response.headers["x-switchboard-deployment"] == "az/tts-prod"
        whole = b"".join([piece async for piece in response.iter_bytes()])
    assert whole == audio

    # The upstream stops after its first piece: the caller has it all the same, then leaves.
    fake.state.set_scenario(Scenario(stall_after_chunks=1))
    async with sdk.audio.speech.with_streaming_response.create(
        model="voice", voice="alloy", input="hello there world", response_format="wav"
    ) as response:
        first = await anext(response.iter_bytes())
        assert audio.startswith(first) and len(first) < len(audio)
        record = fake.state.last(path="/openai/deployments/tts-prod/audio/speech")
        assert record is not None and not record.client_disconnected
    await fake.state.wait_for(lambda: record.client_disconnected)

    # The upstream breaks after its first piece: the body is cut short, never complete-looking.
    fake.state.set_scenario(Scenario(reset_after_chunks=1))
    async with sdk.audio.speech.with_streaming_response.create(
        model="voice", voice="alloy", input="hello there world", response_format="wav"
    ) as response:
        with pytest.raises(Exception, match="incomplete chunked read"):
            [piece async for piece in response.iter_bytes()]


async def test_speech_events_pass_over_azure(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    _, audio = speech_bytes("hello there world", "mp3")
    async with sdk.audio.speech.with_streaming_response.create(
        model="voice", voice="alloy", input="hello there world", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-switchboard-deployment"] == "beta/gpt-4o-mini-tts"
        events = sse_events(await response.text())
    types = [data["type"] for _, data in events]
    assert types == ["speech.audio.delta"] * 3 + ["speech.audio.done"]
    assert b"".join(base64.b64decode(d["audio"]) for _, d in events[:-1]) == audio
    assert events[-1][1]["usage"] == {
        "input_tokens": 3,
        "output_tokens": len(audio),
        "total_tokens": 3 + len(audio),
    }
    assert [r.path for r in fake.state.calls()] == ["/v1/audio/speech"]  # azure: never called


async def test_a_transcription_streams_its_text(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    stream = await sdk.audio.transcriptions.create(
        model="scribe", file=("hello.wav", AUDIO, "audio/wav"), stream=True, include=["logprobs"]
    )
    events = [event async for event in stream]
    text = "hello.wav: 68 bytes of audio/wav"
    assert [e.type for e in events] == ["transcript.text.delta"] * 5 + ["transcript.text.done"]
    assert "".join(e.delta for e in events[:-1]) == text  # type: ignore[union-attr]
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == text
    assert done.logprobs and done.logprobs[0].token == "hello.wav:"
    assert done.usage is not None and done.usage.output_tokens == 5
    assert fake.state.last(path="/v1/audio/transcriptions").body["stream"] == "true"  # type: ignore[union-attr]

    # An upstream that breaks mid-stream: the caller's stream ends with an error.
    fake.state.set_scenario(Scenario(reset_after_chunks=2))
    stream = await sdk.audio.transcriptions.create(
        model="scribe", file=("hello.wav", AUDIO, "audio/wav"), stream=True
    )
    seen = []
    with pytest.raises(openai.APIError):
        async for event in stream:
            seen.append(event.type)
    assert seen == ["transcript.text.delta"] * 2


async def test_images_stream_partial_images_after_failover(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), model="gpt-image-1")
    stream = await sdk.images.generate(
        model="painter", prompt="a red fox", stream=True, partial_images=2
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [getattr(e, "partial_image_index", None) for e in events] == [0, 1, None]
    assert all(base64.b64decode(e.b64_json) == PNG_1X1 for e in events)
    completed = events[-1]
    assert completed.type == "image_generation.completed"
    assert completed.usage.total_tokens == 3 + 272
    assert [r.model for r in fake.state.calls()] == ["gpt-image-1", "gpt-image-1-mini"]

    edits = await sdk.images.edit(
        model="painter",
        image=("fox.png", PNG_1X1, "image/png"),
        prompt="a hat",
        stream=True,
        partial_images=1,
    )
    types = [event.type async for event in edits]
    assert types == ["image_edit.partial_image", "image_edit.completed"]


async def test_an_azure_deployment_refuses_image_events(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.images.generate(model="azure-painter", prompt="a fox", stream=True)
    body: Any = caught.value.body
    assert "streams no events of /images/generations" in body["message"]
    assert fake.state.calls() == []


async def test_a_form_stream_flag_is_read_as_the_router_reads_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """curl's `-F stream=True`: the edge took it for no stream while the router took it for
    one, and refused the Media call it got ("call MediaStream"). A `stream` that is no boolean,
    and `stream` on an operation that has none, are the caller's 400 on `stream`."""
    file = {"file": ("hello.wav", AUDIO, "audio/wav")}
    async with httpx.AsyncClient(base_url=str(sdk.base_url), timeout=10) as http:
        streamed = await http.post(
            "audio/transcriptions", data={"model": "scribe", "stream": "True"}, files=file
        )
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        types = [data["type"] for _, data in sse_events(streamed.text)]
        assert types[-1] == "transcript.text.done"
        calls = fake.state.count()
        for path, stream in (("audio/transcriptions", "yes"), ("audio/translations", "true")):
            refused = await http.post(path, data={"model": "scribe", "stream": stream}, files=file)
            assert refused.status_code == 400
            assert refused.json()["error"]["param"] == "stream"
            assert "Media" not in refused.json()["error"]["message"]  # no gRPC method named
    assert fake.state.count() == calls  # refused before any upstream call
