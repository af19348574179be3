"""Media google-genai sends inline (`Part.from_bytes`), through the edge's Gemini API to an
OpenAI-kind deployment: the SDK writes bytes in base64's URL-safe alphabet (pydantic's), which
Gemini takes; a data URL, and OpenAI's `input_audio.data`, are standard base64."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

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


async def test_inline_data_that_is_not_base64_is_refused_by_name(
    router: RouterHandle, start_edge: StartEdge, fake: FakeUpstream
) -> None:
    """`inlineData.data` is base64 (either alphabet, padded or not), which Gemini decodes and
    refuses when it cannot: it is refused here, named, and never sent on (it was, for a
    deployment to refuse, or to read as it could)."""
    edge = await start_edge(router)
    headers = {"x-goog-api-key": "sk-caller"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10, headers=headers) as http:
        for path, data in (
            ("chain:generateContent", "iVBORw0KGgo!!not base64"),
            ("chain:streamGenerateContent?alt=sse", "iVBORw0KGgo€"),  # not even ASCII
        ):
            image = {"inlineData": {"mimeType": "image/png", "data": data}}
            body = {"contents": [{"role": "user", "parts": [{"text": "what is it?"}, image]}]}
            answer = await http.post(f"/v1beta/models/{path}", json=body)
            assert answer.status_code == 400, answer.text
            error = answer.json()["error"]
            assert error["status"] == "INVALID_ARGUMENT", error
            assert "contents[0].parts[1].inlineData.data" in error["message"], error
    assert fake.state.count() == 0
