"""Google's SDK (google-genai) against the edge's Gemini API when things go wrong: client keys
in `x-goog-api-key`, `?key=` or `Authorization`, Gemini's error object with the status the
edge's taxonomy gives, a stream that fails after its start, and the JSON-array stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from clients import estimate_prompt_tokens
from clients.codec.gemini import generate_request_from_gemini
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client as client_config
from tests.router_service.auth.helpers import guarded_config

KEY = "sk-goog-caller-0123456789"
LIMITED_KEY = "sk-goog-limited-0123456789"
EMBED_KEY = "sk-goog-embedder-0123456789"  # may use the `embedder` group alone
MAX_BODY = 8192
HELLO: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}

Open = Callable[..., genai.Client]


@pytest.fixture
async def edge_url(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> str:
    """An edge over a router that knows three client keys, one of them allowed a single
    request a minute."""
    router = await start_router(
        guarded_config(
            fake.base_url,
            client_config("caller", KEY),
            client_config("one", LIMITED_KEY, rpm=1),
            client_config("embed", EMBED_KEY, models=["embedder"]),
        )
    )
    return (await start_edge(router, max_body_bytes=MAX_BODY)).base_url


@pytest.fixture
async def http(edge_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # 30 s: a hang guard, with a loaded machine's slack (a cut stream is tried on the chain).
    async with httpx.AsyncClient(base_url=edge_url, timeout=30) as client:
        yield client


@pytest.fixture
def open_gemini(edge_url: str, http: httpx.AsyncClient) -> Open:
    def open_(key: str = KEY) -> genai.Client:
        options = types.HttpOptions(base_url=edge_url, httpx_async_client=http)
        return genai.Client(api_key=key, http_options=options)

    return open_


def assert_gemini_error(body: Any, code: int, status: str) -> None:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}, body
    assert (body["error"]["code"], body["error"]["status"]) == (code, status)


async def test_keys_come_in_x_goog_api_key_a_key_parameter_or_a_bearer_token(
    open_gemini: Open, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await open_gemini(KEY).aio.models.generate_content(model="chain", contents="hi")
    assert response.text == "Echo: hi"
    path = "/v1/models/chain:generateContent"
    by_parameter = await http.post(path, params={"key": KEY}, json=HELLO)
    by_bearer = await http.post(path, headers={"authorization": f"Bearer {KEY}"}, json=HELLO)
    for answered in (by_parameter, by_bearer):
        assert answered.status_code == 200, answered.text
        assert answered.json()["candidates"][0]["content"]["parts"] == [{"text": "Echo: hello"}]
    with pytest.raises(errors.ClientError) as refused:
        await open_gemini("sk-unknown").aio.models.generate_content(model="chain", contents="hi")
    assert (refused.value.code, refused.value.status) == (401, "UNAUTHENTICATED")
    assert_gemini_error(refused.value.details, 401, "UNAUTHENTICATED")
    assert "sk-unknown" not in str(refused.value.details)
    in_query = await http.post(path, params={"key": "sk-unknown-in-query"}, json=HELLO)
    assert_gemini_error(in_query.json(), 401, "UNAUTHENTICATED")
    # The edge and the router never log a key (uvicorn's access log, which would write the
    # URL, is off: `uvicorn_config`).
    ours = ("http_edge", "router_service", "clients", "switchboard")
    served = [r for r in caplog.records if r.name.startswith(ours)]
    assert served and not [r for r in served if "sk-unknown" in r.getMessage()]
    assert not [r for r in served if KEY in r.getMessage()]
    with pytest.raises(errors.ClientError) as denied:
        await open_gemini(EMBED_KEY).aio.models.generate_content(model="chain", contents="hi")
    assert (denied.value.code, denied.value.status) == (403, "PERMISSION_DENIED")


async def test_a_missing_key_is_told_to_come_as_googles_key(http: httpx.AsyncClient) -> None:
    """Gemini's callers send `x-goog-api-key` or `?key=`: the refusal of none says so, on every
    path of the API, plain and streamed, in Gemini's shape."""
    refused = [
        await http.post("/v1beta/models/chain:generateContent", json=HELLO),
        await http.post("/v1/models/chain:generateContent", json=HELLO),
        await http.post("/v1beta/models/chain:streamGenerateContent?alt=sse", json=HELLO),
        await http.post("/v1beta/models/chain:countTokens", json=HELLO),
        await http.get("/v1beta/models"),
    ]
    for answer in refused:
        assert_gemini_error(answer.json(), 401, "UNAUTHENTICATED")
        message = answer.json()["error"]["message"]
        assert "x-goog-api-key" in message and "key=" in message, message
        assert "Bearer" not in message


async def test_a_request_the_gateway_cannot_say_is_invalid_argument_naming_the_field(
    open_gemini: Open, http: httpx.AsyncClient
) -> None:
    sdk = open_gemini().aio.models
    spoken = types.GenerateContentConfig(response_modalities=["AUDIO"])
    with pytest.raises(errors.ClientError) as refused:
        await sdk.generate_content(model="chain", contents="hi", config=spoken)
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert "generationConfig.responseModalities" in str(refused.value.message)
    cached = types.GenerateContentConfig(cached_content="cachedContents/abc")
    with pytest.raises(errors.ClientError) as uncached:
        await sdk.generate_content(model="chain", contents="hi", config=cached)
    assert "cachedContent" in str(uncached.value.message)
    search = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    with pytest.raises(errors.ClientError) as searched:
        await sdk.generate_content(model="chain", contents="hi", config=search)
    assert "tools[0].googleSearch" in str(searched.value.message)
    with pytest.raises(errors.ClientError) as unknown:
        await sdk.generate_content(model="no-such-model", contents="hi")
    assert (unknown.value.code, unknown.value.status) == (404, "NOT_FOUND")
    headers = {"x-goog-api-key": KEY}
    odd = await http.post(
        "/v1beta/models/chain:generateContent", json={**HELLO, "odd": 1}, headers=headers
    )
    assert_gemini_error(odd.json(), 400, "INVALID_ARGUMENT")
    assert odd.json()["error"]["message"].startswith("odd: not supported")
    turn = {"role": "user", "parts": [{"text": 7}]}
    typed = await http.post(
        "/v1beta/models/chain:generateContent", json={"contents": [turn]}, headers=headers
    )
    assert (
        typed.status_code == 400 and "contents[0].parts[0].text" in typed.json()["error"]["message"]
    )


async def test_the_callers_own_rate_limit_is_resource_exhausted_with_retry_after(
    open_gemini: Open,
) -> None:
    sdk = open_gemini(LIMITED_KEY).aio.models
    await sdk.generate_content(model="chain", contents="hi")
    with pytest.raises(errors.ClientError) as refused:
        await sdk.generate_content(model="chain", contents="hi")
    assert (refused.value.code, refused.value.status) == (429, "RESOURCE_EXHAUSTED")
    headers = refused.value.response.headers
    assert int(headers["retry-after"]) > 0
    assert headers["x-ratelimit-limit-requests"] == "1"


async def test_a_stream_failing_after_its_start_raises_in_the_sdk(
    open_gemini: Open, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=3))
    stream = await open_gemini().aio.models.generate_content_stream(
        model="chain", contents="a b c d e f"
    )
    texts: list[str] = []
    with pytest.raises(errors.ServerError) as failed:
        async for chunk in stream:
            texts.append(chunk.text or "")
    assert texts and "".join(texts) != "Echo: a b c d e f"
    assert failed.value.status and failed.value.code >= 500


async def test_without_alt_sse_the_stream_is_one_json_array(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    headers = {"x-goog-api-key": KEY}
    path = "/v1beta/models/chain:streamGenerateContent"
    answered = await http.post(path, json=HELLO, headers=headers)
    assert answered.headers["content-type"].startswith("application/json")
    chunks = orjson.loads(answered.content)
    assert len(chunks) > 1
    assert "".join(p["text"] for c in chunks[:-1] for p in c["candidates"][0]["content"]["parts"])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] > 0
    fake.state.set_scenario(Scenario(truncate_after_chunks=2))
    failed = orjson.loads((await http.post(path, json=HELLO, headers=headers)).content)
    assert set(failed[-1]) == {"error"} and failed[-1]["error"]["code"] >= 500


async def test_count_tokens_is_the_routers_estimate(open_gemini: Open) -> None:
    text = "How many tokens is this sentence?"
    counted = await open_gemini().aio.models.count_tokens(model="chain", contents=text)
    params, _ = generate_request_from_gemini(
        "chain", {"contents": [{"role": "user", "parts": [{"text": text}]}]}, False
    )
    assert counted.total_tokens == estimate_prompt_tokens(params) > 0
    with pytest.raises(errors.ClientError) as unknown:
        await open_gemini().aio.models.count_tokens(model="nope", contents=text)
    assert unknown.value.code == 404
    with pytest.raises(errors.ClientError) as refused:
        await open_gemini("sk-unknown").aio.models.count_tokens(model="chain", contents=text)
    assert refused.value.code == 401


async def test_errors_raised_before_the_route_are_geminis(http: httpx.AsyncClient) -> None:
    headers = {"x-goog-api-key": KEY}
    unknown_method = await http.post("/v1beta/models/chain:nope", json={}, headers=headers)
    unknown_v1_method = await http.post("/v1/models/chain:nope", json={}, headers=headers)
    unknown_path = await http.get("/v1beta/nothing", headers=headers)
    malformed = await http.post("/v1/models/chain:generateContent", content=b"{", headers=headers)
    too_large = {"contents": [{"parts": [{"text": "x" * MAX_BODY}]}]}
    over = await http.post("/v1/models/chain:generateContent", json=too_large, headers=headers)
    missing = await http.get("/v1/models/nope", headers=headers)
    assert_gemini_error(unknown_method.json(), 404, "NOT_FOUND")
    assert_gemini_error(unknown_v1_method.json(), 404, "NOT_FOUND")
    assert_gemini_error(unknown_path.json(), 404, "NOT_FOUND")
    assert_gemini_error(malformed.json(), 400, "INVALID_ARGUMENT")
    assert_gemini_error(over.json(), 413, "INVALID_ARGUMENT")
    assert_gemini_error(missing.json(), 404, "NOT_FOUND")
    # OpenAI's callers of the same `/v1/models` read OpenAI's list and errors.
    bearer = {"authorization": f"Bearer {KEY}"}
    listed = (await http.get("/v1/models", headers=bearer)).json()
    assert listed["object"] == "list" and {m["id"] for m in listed["data"]} >= {"chain"}
    absent = (await http.get("/v1/models/nope", headers=bearer)).json()
    assert absent["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/chain", "/v1beta/models"])
async def test_a_model_list_is_the_callers_own_to_http_caches(
    http: httpx.AsyncClient, path: str
) -> None:
    """Its shape follows x-goog-api-key, and its content the key: a shared cache must neither
    keep one (a Google key is no Authorization, which shared caches pass over) nor mix them."""
    for headers in ({"x-goog-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        answer = await http.get(path, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "private"
        assert "x-goog-api-key" in answer.headers["vary"]


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        ("embedContent", {"outputDimensionality": 0}, "outputDimensionality"),
        ("batchEmbedContents", {"outputDimensionality": -1}, "requests[0].outputDimensionality"),
    ],
)
async def test_an_embedding_size_below_one_names_the_field_the_caller_sent(
    http: httpx.AsyncClient, fake: FakeUpstream, method: str, body: Any, field: str
) -> None:
    """The router refuses a `dimensions` below 1; a Gemini caller was told of `dimensions`, a
    field it never sent, rather than of its `outputDimensionality`."""
    request = {"content": {"parts": [{"text": "a"}]}, **body}
    sent = {"requests": [request]} if method.startswith("batch") else request

    answer = await http.post(
        f"/v1beta/models/embedder:{method}", json=sent, headers={"x-goog-api-key": KEY}
    )

    assert_gemini_error(answer.json(), 400, "INVALID_ARGUMENT")
    assert answer.json()["error"]["message"].startswith(f"{field}: ")
    assert fake.state.count() == 0


async def test_a_batch_asking_two_task_types_is_refused(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """A call carries one taskType and title to its deployment: a batch asking two was a
    query's vector for a document, or the other way round, without a word."""
    requests = [
        {"content": {"parts": [{"text": t}]}, "taskType": kind}
        for t, kind in (("a", "RETRIEVAL_QUERY"), ("b", "RETRIEVAL_DOCUMENT"))
    ]

    answer = await http.post(
        "/v1beta/models/embedder:batchEmbedContents",
        json={"requests": requests},
        headers={"x-goog-api-key": KEY},
    )

    assert_gemini_error(answer.json(), 400, "INVALID_ARGUMENT")
    assert answer.json()["error"]["message"].startswith("requests: ")
    assert fake.state.count() == 0


async def test_a_stream_an_overloaded_upstream_cuts_is_unavailable_not_its_raw_status(
    open_gemini: Open, fake: FakeUpstream
) -> None:
    """An upstream's 529 mid-stream is the edge's 503 UNAVAILABLE (as the same failure before
    the stream's start is), a status Gemini documents: never `code: 529, status: INTERNAL`."""
    overloaded = {"message": "Overloaded", "type": "overloaded_error", "code": 529}
    fake.state.set_scenario(Scenario(wrapped_error_at_chunk=3, wrapped_error=overloaded))
    stream = await open_gemini().aio.models.generate_content_stream(
        model="chain", contents="a b c d e f"
    )
    with pytest.raises(errors.ServerError) as failed:
        async for _ in stream:
            pass
    assert (failed.value.code, failed.value.status) == (503, "UNAVAILABLE")
    assert_gemini_error(failed.value.details, 503, "UNAVAILABLE")
