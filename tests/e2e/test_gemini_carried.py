"""A Gemini caller's `labels`, `serviceTier` and `generationConfig.mediaResolution` (google-genai
sends them from GenerateContentConfig): taken by the edge's Gemini API, put where Gemini reads
them for a Gemini deployment, and sent to no other kind (none has a word for them)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from clients.codec.gemini import GEMINI_ONLY
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_gemini_sdk import config

SETTINGS = types.GenerateContentConfig(
    labels={"team": "search"},
    service_tier=types.ServiceTier.FLEX,
    media_resolution=types.MediaResolution.MEDIA_RESOLUTION_LOW,
    temperature=0.5,
)
CARRIED = ("labels", "serviceTier", "generationConfig", GEMINI_ONLY)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = config(fake)
    out["providers"] |= {
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
    }
    out["models"] |= {
        "sonnet": {"deployments": [{"provider": "claude", "model": "claude-x"}]},
        "command": {"deployments": [{"provider": "co", "model": "command-a"}]},
    }
    return await start_router(out)


def received(fake: FakeUpstream) -> dict[str, Any]:
    sent = fake.state.last()
    assert sent is not None
    return sent.body


@pytest.mark.parametrize("stream", [False, True])
async def test_a_gemini_deployment_gets_them_where_gemini_reads_them(
    gemini: genai.Client, fake: FakeUpstream, stream: bool
) -> None:
    if stream:
        chunks = await gemini.aio.models.generate_content_stream(
            model="flash", contents="hello", config=SETTINGS
        )
        text = "".join([chunk.text or "" async for chunk in chunks])
    else:
        answer = await gemini.aio.models.generate_content(
            model="flash", contents="hello", config=SETTINGS
        )
        text = answer.text or ""

    assert text == "Echo: hello"
    body = received(fake)
    assert (body["labels"], body["serviceTier"]) == ({"team": "search"}, "flex")
    config = body["generationConfig"]
    assert (config["mediaResolution"], config["temperature"]) == ("MEDIA_RESOLUTION_LOW", 0.5)
    assert GEMINI_ONLY not in body


@pytest.mark.parametrize("model", ["chain", "sonnet", "command"])
async def test_other_kinds_answer_without_them(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    answer = await gemini.aio.models.generate_content(
        model=model, contents="hello", config=SETTINGS
    )

    assert answer.text == "Echo: hello"
    body = received(fake)
    assert [key for key in CARRIED if key in body] == []
    assert body["temperature"] == 0.5


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"labels": ["team"]}, "labels"),
        ({"labels": {"team": 1}}, "labels.team"),
        ({"serviceTier": 2}, "serviceTier"),
        ({"generationConfig": {"mediaResolution": True}}, "generationConfig.mediaResolution"),
    ],
)
async def test_a_wrong_type_is_a_400_naming_the_gemini_field(
    gemini: genai.Client, fake: FakeUpstream, fields: dict[str, Any], path: str
) -> None:
    base_url = str(gemini._api_client._http_options.base_url).rstrip("/")
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **fields}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        answer = await http.post(
            "/v1beta/models/flash:generateContent",
            json=body,
            headers={"x-goog-api-key": "sk-caller"},
        )

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert path in error["message"]
    assert fake.state.count() == 0


@pytest.mark.parametrize("given", ["low", ["low"], 5])
async def test_an_openai_callers_carried_config_not_an_object_is_a_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, given: Any
) -> None:
    """The key is the body's like any extra: an OpenAI caller can send it, unchecked by the
    Gemini entrance, and its generationConfig is then checked as the caller's own one is."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="flash",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={GEMINI_ONLY: {"generationConfig": given}},
        )

    assert "generationConfig" in refused.value.message
    assert fake.state.count() == 0
