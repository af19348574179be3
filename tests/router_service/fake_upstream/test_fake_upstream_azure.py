"""The fake upstream speaks Azure OpenAI's deployment-based API: its paths, its `api-key` header and
`api-version` query (refused as Azure refuses them), its content-filter annotations, and the
scenarios' failures in Azure's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario

CHAT = "/openai/deployments/gpt-4o-prod/chat/completions"
VERSION = {"api-version": "2024-10-21"}
KEY = {"api-key": "az-key-1"}
HELLO = {"messages": [{"role": "user", "content": "hello world"}]}


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


def data_events(raw: str) -> list[Any]:
    """The payloads of a complete SSE body's `data:` events, `[DONE]` as the string."""
    payloads = [block.removeprefix("data: ") for block in raw.strip().split("\n\n")]
    return [p if p == "[DONE]" else orjson.loads(p) for p in payloads]


async def test_chat_at_the_deployments_path(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    resp = await http.post(CHAT, params=VERSION, headers=KEY, json=HELLO)

    assert resp.status_code == 200
    body = resp.json()
    assert body["choices"][0]["message"]["content"] == "Echo: hello world"
    assert body["model"] == "gpt-4o-prod"  # the deployment, from the path (no body model)
    assert body["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert body["choices"][0]["content_filter_results"]["violence"]["severity"] == "safe"
    record = fake.state.last()
    assert record is not None and (record.key, record.model) == ("az-key-1", "gpt-4o-prod")


async def test_a_stream_opens_with_the_prompt_filter_annotation(http: httpx.AsyncClient) -> None:
    resp = await http.post(CHAT, params=VERSION, headers=KEY, json={**HELLO, "stream": True})

    events = data_events(resp.text)
    opening, *chunks, done = events
    assert opening["id"] == "" and opening["choices"] == [] and opening["created"] == 0
    assert opening["prompt_filter_results"][0]["prompt_index"] == 0
    assert done == "[DONE]"
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"]
    assert all("content_filter_results" in c["choices"][0] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == (
        "Echo: hello world"
    )


async def test_a_filtered_answer_finishes_with_content_filter(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="content_filter"))
    choice = (await http.post(CHAT, params=VERSION, headers=KEY, json=HELLO)).json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["content_filter_results"]["violence"] == {"filtered": True, "severity": "medium"}


@pytest.mark.parametrize(
    ("params", "headers", "status", "error"),
    [
        ({}, KEY, 404, {"code": "404", "message": "Resource not found"}),
        ({"api-version": "latest"}, KEY, 400, {"code": "BadRequest"}),
        (VERSION, {}, 401, {"code": "401"}),
    ],
    ids=["no_api_version", "bad_api_version", "no_key"],
)
async def test_a_request_azure_refuses(
    http: httpx.AsyncClient,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    error: dict[str, str],
) -> None:
    resp = await http.post(CHAT, params=params, headers=headers, json=HELLO)
    assert resp.status_code == status
    assert error.items() <= resp.json()["error"].items()


@pytest.mark.parametrize(("version", "status"), [("2024-06-01", 400), ("2024-08-01-preview", 200)])
async def test_stream_options_are_refused_before_the_api_version_that_has_them(
    http: httpx.AsyncClient, version: str, status: int
) -> None:
    body = {**HELLO, "stream": True, "stream_options": {"include_usage": True}}
    resp = await http.post(CHAT, params={"api-version": version}, headers=KEY, json=body)
    assert resp.status_code == status
    if status == 400:
        assert "stream_options" in resp.json()["error"]["message"]


async def test_a_key_sent_as_a_bearer_token_is_a_token_azure_does_not_take(
    http: httpx.AsyncClient,
) -> None:
    # The key as OpenAI sends it is no Azure key: Azure reads it as an Entra ID token.
    resp = await http.post(
        CHAT, params=VERSION, headers={"authorization": "Bearer az-key-1"}, json=HELLO
    )
    assert resp.status_code == 401
    assert resp.json()["message"].startswith("Unauthorized. Access token is missing, invalid")


async def test_scenarios_in_azures_words(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    async def post() -> httpx.Response:
        return await http.post(CHAT, params=VERSION, headers=KEY, json=HELLO)

    fake.state.set_scenario(Scenario.rate_limited(retry_after="2", times=1))
    limited = await post()
    assert limited.status_code == 429
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("2", "2000")
    assert "exceeded token rate limit" in limited.json()["error"]["message"]

    fake.state.set_scenario(Scenario(blocked="hate", times=1))
    blocked = await post()
    error = blocked.json()["error"]
    assert (blocked.status_code, error["code"], error["param"]) == (400, "content_filter", "prompt")
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["hate"]["filtered"] is True

    fake.state.set_scenario(Scenario(status=404, times=1))
    missing = await post()
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "DeploymentNotFound"


async def test_embeddings_and_models(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    path = "/openai/deployments/embed-prod/embeddings"
    resp = await http.post(path, params=VERSION, headers=KEY, json={"input": ["a", "b"]})
    assert [item["index"] for item in resp.json()["data"]] == [0, 1]
    record = fake.state.last()
    assert record is not None and record.model == "embed-prod"

    models = await http.get("/openai/models", params=VERSION, headers=KEY)
    assert [m["id"] for m in models.json()["data"]] == fake.state.models
    assert (await http.get("/openai/models", headers=KEY)).status_code == 404
