"""Media google-genai sends inline (`Part.from_bytes`), through the edge's Gemini API to an
OpenAI-kind deployment: the SDK writes bytes in base64's URL-safe alphabet (pydantic's), which
Gemini takes; a data URL, and OpenAI's `input_audio.data`, are standard base64."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config

# Bytes whose base64 has `+` and `/` (URL-safe: `-` and `_`) and needs padding.
MEDIA = b"\x89PNG\r\n\x1a\n\x00\xfb\xef\xbe\xff\xff\xff\xfb\xf0"
STANDARD = base64.b64encode(MEDIA).decode()


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(base_config(fake.base_url))


async def test_inline_media_reaches_the_deployment_as_standard_base64(
    gemini: genai.Client, fake: FakeUpstream
) -> None:
    assert "+" in STANDARD and "/" in STANDARD
    parts = [
        types.Part(text="what are these?"),
        types.Part.from_bytes(data=MEDIA, mime_type="image/png"),
        types.Part.from_bytes(data=MEDIA, mime_type="audio/wav"),
        types.Part.from_bytes(data=MEDIA, mime_type="application/pdf"),
    ]

    await gemini.aio.models.generate_content(model="chain", contents=parts)

    sent = fake.state.last()
    assert sent is not None
    content: list[Any] = sent.body["messages"][0]["content"]
    assert content[1:] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{STANDARD}"}},
        {"type": "input_audio", "input_audio": {"data": STANDARD, "format": "wav"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{STANDARD}"}},
    ]
