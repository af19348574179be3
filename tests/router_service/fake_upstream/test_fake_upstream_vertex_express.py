"""The fake upstream's Vertex AI express mode: Gemini's methods at URLs without a project or a
location, an API key in `x-goog-api-key` or `?key=` instead of a token (recorded under the label
a test registered it with), Google's refusals when there is none or it is invalid, no
`:predict`, and the model list for an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.vertex_keys import express_key, express_keys

MODEL = "/v1/publishers/google/models/gemini-2.5-flash"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


@pytest.mark.parametrize("in_header", [True, False], ids=["header", "query"])
async def test_generate_content_takes_an_api_key(
    http: httpx.AsyncClient, fake: FakeUpstream, in_header: bool
) -> None:
    [key] = express_keys(fake, ["ex-1"])
    headers = {"x-goog-api-key": key} if in_header else {}
    query = {} if in_header else {"key": key}

    resp = await http.post(f"{MODEL}:generateContent", json=HELLO, headers=headers, params=query)

    assert resp.status_code == 200
    assert resp.json()["candidates"][0]["content"]["parts"] == [{"text": "Echo: hello world"}]
    record = fake.state.last()
    assert record is not None and (record.key, record.model) == ("ex-1", "gemini-2.5-flash")


async def test_a_stream_and_an_unregistered_key(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    key = express_key("unregistered")
    resp = await http.post(
        f"{MODEL}:streamGenerateContent",
        json=HELLO,
        headers={"x-goog-api-key": key},
        params={"alt": "sse"},
    )

    assert resp.status_code == 200
    assert resp.text.startswith("data: ")
    record = fake.state.last()
    assert record is not None and record.key == key and record.stream


async def test_without_a_key_it_is_permission_denied(http: httpx.AsyncClient) -> None:
    resp = await http.post(f"{MODEL}:generateContent", json=HELLO)

    assert resp.status_code == 403
    assert resp.json()["error"]["status"] == "PERMISSION_DENIED"
    assert "unregistered callers" in resp.json()["error"]["message"]


async def test_an_invalid_key_is_api_key_invalid(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    [key] = express_keys(fake, ["ex-bad"])
    fake.state.set_scenario(Scenario.invalid_key(style="native"), key="ex-bad")

    resp = await http.post(f"{MODEL}:generateContent", json=HELLO, headers={"x-goog-api-key": key})

    assert resp.status_code == 400
    assert resp.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_express_mode_has_no_predict(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    [key] = express_keys(fake, ["ex-1"])
    body = {"instances": [{"content": "x"}]}
    resp = await http.post(
        "/v1/publishers/google/models/text-embedding-005:predict",
        json=body,
        headers={"x-goog-api-key": key},
    )
    assert resp.status_code == 404


async def test_the_model_list_takes_an_api_key(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    [key] = express_keys(fake, ["ex-1"])
    resp = await http.get("/v1beta1/publishers/google/models", headers={"x-goog-api-key": key})

    assert resp.status_code == 200
    names = [m["name"] for m in resp.json()["publisherModels"]]
    assert names == [f"publishers/google/models/{m}" for m in fake.state.models]
    record = fake.state.last()
    assert record is not None and record.key == "ex-1"
