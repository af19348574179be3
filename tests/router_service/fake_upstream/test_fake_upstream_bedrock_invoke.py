"""The fake upstream's Bedrock InvokeModel for embedding models: Titan's one text per call and
Cohere's batches at `/model/{id}/invoke`, the token count in Bedrock's header, the bodies those
models refuse, SigV4 verified as for Converse, and its errors with `x-amzn-ErrorType`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from router_service.fake_upstream import FAKE_AWS_SECRET_ACCESS_KEY, FakeUpstream, Scenario
from router_service.fake_upstream._responses import embedding_vector
from tests.router_service.fake_upstream.test_fake_upstream_bedrock import signed_headers

BEARER = {"Authorization": "Bearer kb"}
TITAN = "/model/amazon.titan-embed-text-v2%3A0/invoke"
TITAN_V1 = "/model/amazon.titan-embed-text-v1/invoke"
COHERE = "/model/cohere.embed-english-v3/invoke"
COHERE_V4 = "/model/us.cohere.embed-v4%3A0/invoke"


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


async def test_titan_embeds_one_text(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = {"inputText": "hello there world", "dimensions": 256, "normalize": True}
    resp = await http.post(TITAN, json=body, headers=BEARER)

    assert resp.status_code == 200
    data = resp.json()
    assert data["embedding"] == embedding_vector("hello there world", 256)
    assert data["inputTextTokenCount"] == 3
    assert resp.headers["x-amzn-bedrock-input-token-count"] == "3"
    record = fake.state.last()
    assert record is not None and record.model == "amazon.titan-embed-text-v2:0"


@pytest.mark.parametrize("by_type", [True, False], ids=["embeddings_by_type", "floats"])
async def test_cohere_embeds_a_batch(http: httpx.AsyncClient, by_type: bool) -> None:
    body: dict[str, Any] = {"texts": ["a b", "c"], "input_type": "search_document"}
    if by_type:
        body["embedding_types"] = ["float"]
    data = (await http.post(COHERE, json=body, headers=BEARER)).json()

    vectors = [embedding_vector(text, 8) for text in ("a b", "c")]  # JSON keeps them exact
    if by_type:
        assert data["response_type"] == "embeddings_by_type"
        assert data["embeddings"] == {"float": vectors}
    else:
        assert data["response_type"] == "embeddings_floats"
        assert data["embeddings"] == vectors
    assert data["texts"] == ["a b", "c"]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        (TITAN, {"inputText": "x", "dimensions": 4}, "#/dimensions"),
        (TITAN, {"inputText": ""}, "#/inputText"),
        (TITAN, {"texts": ["x"]}, "extraneous key [texts]"),
        (TITAN_V1, {"inputText": "x", "dimensions": 256}, "extraneous key [dimensions]"),
        (COHERE, {"texts": ["x"] * 97, "input_type": "search_document"}, "maximum item count"),
        (COHERE, {"texts": ["x"]}, "#/input_type"),
        (
            COHERE,
            {"texts": ["x"], "input_type": "search_query", "output_dimension": 512},
            "extraneous key [output_dimension]",
        ),
        (
            COHERE_V4,
            {"texts": ["x"], "input_type": "search_query", "output_dimension": 500},
            "#/output_dimension",
        ),
        ("/model/anthropic.claude-v2/invoke", {"inputText": "x"}, "embedding models only"),
    ],
)
async def test_bodies_the_models_refuse(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], says: str
) -> None:
    resp = await http.post(path, json=body, headers=BEARER)
    assert resp.status_code == 400
    assert resp.headers["x-amzn-ErrorType"].startswith("ValidationException:")
    assert says in resp.json()["message"]


@pytest.mark.parametrize(
    ("secret", "status"), [(FAKE_AWS_SECRET_ACCESS_KEY, 200), ("anotherSecret", 403)]
)
async def test_sigv4_is_verified(
    http: httpx.AsyncClient, fake: FakeUpstream, secret: str, status: int
) -> None:
    body = orjson.dumps({"texts": ["x"], "input_type": "search_document"})
    headers = signed_headers(COHERE, body, secret, f"127.0.0.1:{fake.port}")

    resp = await http.post(COHERE, content=body, headers=headers)

    assert resp.status_code == status
    if status == 403:
        assert resp.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")


async def test_scenarios_apply(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after=None))
    resp = await http.post(TITAN, json={"inputText": "x"}, headers=BEARER)
    assert resp.status_code == 429
    assert resp.headers["x-amzn-ErrorType"].startswith("ThrottlingException:")
