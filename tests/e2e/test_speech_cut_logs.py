"""A speech stream cut after its commit, on purpose (the upstream broke: the body is cut short so
that no client takes it for whole) or by its caller leaving, is said once by the edge's own log
(a warning, for the upstream's break), never by uvicorn as an ERROR of the application."""

from __future__ import annotations

import logging

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._media import speech_bytes
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_media_stream_sdk import config

pytestmark = pytest.mark.timeout(60)

SPEECH = "/openai/deployments/tts-prod/audio/speech"


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]


async def test_a_caller_leaving_mid_speech_logs_no_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, audio = speech_bytes("hello there world", "wav")
    fake.state.set_scenario(Scenario(stall_after_chunks=1))
    async with sdk.audio.speech.with_streaming_response.create(
        model="voice", voice="alloy", input="hello there world", response_format="wav"
    ) as response:
        first = await anext(response.iter_bytes())
        assert audio.startswith(first) and len(first) < len(audio)
        record = fake.state.last(path=SPEECH)
    assert record is not None
    await fake.state.wait_for(lambda: record.client_disconnected)
    await fake.state.wait_for_count(1, path=SPEECH)
    assert not errors(caplog)


async def test_speech_cut_on_purpose_logs_a_warning_not_an_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.state.set_scenario(Scenario(reset_after_chunks=1))
    async with sdk.audio.speech.with_streaming_response.create(
        model="voice", voice="alloy", input="hello there world", response_format="wav"
    ) as response:
        with pytest.raises(Exception, match="incomplete chunked read"):
            [piece async for piece in response.iter_bytes()]
    assert not errors(caplog)
    cut = [r for r in caplog.records if "speech cut short" in r.getMessage()]
    assert [r.levelno for r in cut] == [logging.WARNING]
