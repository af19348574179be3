"""A Gemini caller's `labels`, `serviceTier`, `generationConfig.mediaResolution` and
`safetySettings` (google-genai sends them from GenerateContentConfig): taken by the edge's Gemini
API, put where Gemini reads them for a Gemini deployment (`gemini` and `vertex` kinds), and sent
to no other kind (none has a word for them); an OpenAI caller sends them in `gemini_only`."""

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
from tests.vertex_keys import express_key

SETTINGS = types.GenerateContentConfig(
    labels={"team": "search"},
    service_tier=types.ServiceTier.FLEX,
    media_resolution=types.MediaResolution.MEDIA_RESOLUTION_LOW,
    temperature=0.5,
    safety_settings=[
        types.SafetySetting(
            category=types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
            threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
        )
    ],
)
SAFETY = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}]
# HarmBlockMethod: Vertex AI's alone (the Gemini API answers a 400 for it).
SEVERITY = {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE", "method": "SEVERITY"}
CARRIED = ("labels", "serviceTier", "generationConfig", "safetySettings", GEMINI_ONLY)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = config(fake)
    out["providers"] |= {
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
        "vx": {"kind": "vertex", "base_url": fake.url, "keys": [express_key("one")]},
    }
    out["models"] |= {
        "vertex-flash": {"deployments": [{"provider": "vx", "model": "gemini-2.5-flash"}]},
        "sonnet": {"deployments": [{"provider": "claude", "model": "claude-x"}]},
        "gemini-then-vertex": {
            "deployments": [
                {"provider": "google", "model": "gemini-x"},
                {"provider": "vx", "model": "gemini-2.5-flash"},
            ],
            "strategy": "ordered",
        },
        "cohere-then-gemini": {
            "deployments": [
                {"provider": "co", "model": "command-a"},
                {"provider": "google", "model": "gemini-x"},
            ],
            "strategy": "ordered",
        },
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
    assert body["safetySettings"] == SAFETY
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
        ({"safetySettings": SAFETY[0]}, "safetySettings"),
        ({"safetySettings": ["HARM_CATEGORY_HATE_SPEECH"]}, "safetySettings[0]"),
        ({"safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH"}]}, "threshold"),
        ({"safetySettings": [{**SAFETY[0], "method": 2}]}, "safetySettings[0].method"),
        ({"safetySettings": [{**SAFETY[0], "probability": "LOW"}]}, "[0].probability"),
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


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent?alt=sse"])
async def test_a_vertex_only_method_is_a_400_naming_the_callers_own_field(
    gemini: genai.Client, fake: FakeUpstream, method: str
) -> None:
    """Vertex AI's alone, and `flash` a Gemini API deployment (google-genai itself refuses it
    in Gemini API mode; a plain HTTP caller can send it): the router's refusal names the
    field the caller sent, not the `gemini_only` one the entrance carried it in."""
    base_url = str(gemini._api_client._http_options.base_url).rstrip("/")
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    body["safetySettings"] = [SAFETY[0], SEVERITY]
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        answer = await http.post(
            f"/v1beta/models/flash:{method}", json=body, headers={"x-goog-api-key": "sk-caller"}
        )

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    said, _, why = error["message"].partition(": ")
    assert said == "safetySettings[1].method", error["message"]
    assert why.startswith("a safety setting's `method` (HarmBlockMethod) is Vertex AI's")
    assert GEMINI_ONLY not in error["message"]
    assert fake.state.count() == 0


async def test_a_part_no_deployment_takes_is_a_400_naming_the_callers_turn(
    gemini: genai.Client, fake: FakeUpstream
) -> None:
    """Any input the router finds no deployment of the group can take is said of the field the
    Gemini caller sent (its turn), as the entrance's own refusals are."""
    base_url = str(gemini._api_client._http_options.base_url).rstrip("/")
    audio = {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
    turns = [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {"role": "user", "parts": [{"text": "listen"}, audio]},
    ]
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        answer = await http.post(
            "/v1beta/models/sonnet:generateContent",
            json={"contents": turns},
            headers={"x-goog-api-key": "sk-caller"},
        )

    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    said, _, why = message.partition(": ")
    assert said == "contents[2]", message
    assert why.startswith("anthropic takes no audio")
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


@pytest.mark.parametrize(
    ("model", "settings"), [("flash", SAFETY), ("vertex-flash", [*SAFETY, SEVERITY])]
)
async def test_an_openai_callers_safety_settings_reach_a_gemini_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, settings: list[dict[str, str]]
) -> None:
    answer = await sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello"}],
        extra_body={GEMINI_ONLY: {"safetySettings": settings}},
    )

    assert answer.choices[0].message.content == "Echo: hello"
    body = received(fake)
    assert body["safetySettings"] == settings
    assert GEMINI_ONLY not in body


@pytest.mark.parametrize("model", ["chain", "sonnet", "command"])
async def test_an_openai_callers_safety_settings_reach_no_other_kind(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    answer = await sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello"}],
        extra_body={GEMINI_ONLY: {"safetySettings": SAFETY}},
    )

    assert answer.choices[0].message.content == "Echo: hello"
    assert [key for key in CARRIED if key in received(fake)] == []


@pytest.mark.parametrize("stream", [False, True])
async def test_a_vertex_only_method_is_refused_for_a_gemini_api_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    """The Gemini API has no HarmBlockMethod: sent, Google answers a 400 after a key was
    leased; dropped, the threshold would be read as a probability, not the severity asked for
    (another filter than the caller's). So the deployment passes, as for media it cannot take,
    and the caller gets the 400 naming the field when none of the group can."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="flash",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={GEMINI_ONLY: {"safetySettings": [*SAFETY, SEVERITY]}},
            stream=stream,
        )

    assert refused.value.param == "gemini_only.safetySettings[1].method"
    assert "Vertex AI" in refused.value.message
    assert fake.state.count() == 0


async def test_a_vertex_only_method_goes_to_the_groups_vertex_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answer = await sdk.chat.completions.create(
        model="gemini-then-vertex",
        messages=[{"role": "user", "content": "hello"}],
        extra_body={GEMINI_ONLY: {"safetySettings": [SEVERITY]}},
    )

    assert answer.choices[0].message.content == "Echo: hello"
    assert fake.state.count() == 1
    assert received(fake)["safetySettings"] == [SEVERITY]
    served = fake.state.last()
    assert served is not None and "/publishers/google/models/" in served.path


@pytest.mark.parametrize("model", ["flash", "cohere-then-gemini", "sonnet"])
@pytest.mark.parametrize(
    ("given", "param"),
    [
        ("BLOCK_NONE", "gemini_only.safetySettings"),
        ([{"category": "HARM_CATEGORY_HATE_SPEECH"}], "gemini_only.safetySettings[0].threshold"),
        ([{**SAFETY[0], "threshold": 4}], "gemini_only.safetySettings[0].threshold"),
    ],
)
async def test_an_openai_callers_malformed_safety_setting_is_a_400_naming_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, given: Any, param: str, model: str
) -> None:
    """Refused at the entrance, whichever deployment of the group would be asked first: not
    answered by one that drops the field and refused by another."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={GEMINI_ONLY: {"safetySettings": given}},
        )

    assert refused.value.param == param
    assert fake.state.count() == 0
