"""Rerank as a user sees it: Cohere's own SDK (`ClientV2.rerank`, `POST /v2/rerank`) and plain
HTTP (`/v1/rerank`, `/rerank`, as Jina's, vLLM's and LiteLLM's clients post) → the HTTP edge →
the router → the fake upstream, through a group of a vLLM-style server and Cohere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import cohere
import httpx
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._rerank import overlap_score
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client, guarded_config

pytestmark = pytest.mark.timeout(60)

QUERY = "capital of france"
DOCUMENTS = ["Berlin is in Germany", "Paris is the capital of France", "France has wine"]
APP, CHATTER, SEARCHER = "sk-rerank-app", "sk-chat-only", "sk-search-only"


def best_first(documents: list[str] = DOCUMENTS) -> list[int]:
    scores = [overlap_score(QUERY, document) for document in documents]
    return sorted(range(len(documents)), key=lambda i: -scores[i])


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = guarded_config(
        fake.base_url,
        client("app", APP),
        client("chatter", CHATTER, scopes=["chat"]),
        client("searcher", SEARCHER, scopes=["embed"]),
    )
    config["providers"]["co"] = {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]}
    config["models"]["reranker"] = {
        "deployments": [
            {"provider": "alpha", "model": "bge-reranker"},
            {"provider": "co", "model": "rerank-v3.5"},
        ]
    }
    return await start_router(config)


@pytest.fixture
async def edge_url(router: RouterHandle, start_edge: StartEdge) -> str:
    return (await start_edge(router)).base_url


@pytest.fixture
async def co(edge_url: str) -> AsyncIterator[cohere.AsyncClientV2]:
    async with httpx.AsyncClient(timeout=10) as session:  # the SDK's, closed here
        yield cohere.AsyncClientV2(base_url=edge_url, api_key=APP, httpx_client=session)


@pytest.fixture
async def http(edge_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {APP}"}
    async with httpx.AsyncClient(base_url=edge_url, headers=headers, timeout=10) as session:
        yield session


async def test_the_cohere_sdk_reranks_through_the_edge(
    co: cohere.AsyncClientV2, fake: FakeUpstream
) -> None:
    answer = await co.rerank(model="reranker", query=QUERY, documents=DOCUMENTS, top_n=2)
    assert [r.index for r in answer.results] == best_first()[:2]
    scores = [r.relevance_score for r in answer.results]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    assert answer.meta is None  # vLLM bills tokens, not Cohere's search units
    assert fake.state.last(path="/v1/rerank").body["model"] == "bge-reranker"  # type: ignore[union-attr]


async def test_the_cohere_sdk_gets_cohere_after_a_failing_deployment(
    co: cohere.AsyncClientV2, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), model="bge-reranker")
    answer = await co.rerank(model="reranker", query=QUERY, documents=DOCUMENTS)
    assert [r.index for r in answer.results] == best_first()
    assert [c.path for c in fake.state.calls()] == ["/v1/rerank", "/v2/rerank"]
    assert fake.state.calls()[1].key == "co-key"


async def test_the_cohere_sdk_sees_a_bad_request_as_its_400(co: cohere.AsyncClientV2) -> None:
    with pytest.raises(cohere.BadRequestError) as caught:
        await co.rerank(model="reranker", query=QUERY, documents=DOCUMENTS, top_n=0)
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["param"] == "top_n"


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
async def test_jina_style_documents_and_return_documents_over_http(
    http: httpx.AsyncClient, path: str
) -> None:
    body = {
        "model": "reranker",
        "query": QUERY,
        "documents": [{"text": text} for text in DOCUMENTS],
        "return_documents": True,
        "top_n": 2,
    }
    answer = await http.post(path, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-switchboard-deployment"] == "alpha/bge-reranker"
    data = answer.json()
    assert data["model"] == "reranker"
    assert [(r["index"], r["document"]["text"]) for r in data["results"]] == [
        (i, DOCUMENTS[i]) for i in best_first()[:2]
    ]
    assert data["usage"]["total_tokens"] == len(f"{QUERY} {' '.join(DOCUMENTS)}".split())


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": QUERY, "documents": []}, "documents"),
        ({"documents": DOCUMENTS}, "query"),
        ({"query": QUERY, "documents": DOCUMENTS, "top_n": 0}, "top_n"),
        ({"query": QUERY, "documents": ["x"] * 1001}, "documents"),  # server.max_rerank_documents
        ({"query": QUERY}, "documents"),
    ],
)
async def test_bad_input_is_a_400_naming_the_param(
    http: httpx.AsyncClient, fake: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    answer = await http.post("/v1/rerank", json={"model": "reranker", **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert fake.state.calls() == []


async def test_a_client_without_the_embed_scope_is_refused(
    edge_url: str, fake: FakeUpstream
) -> None:
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as session:
        answer = await session.post(
            "/v1/rerank",
            json={"model": "reranker", "query": QUERY, "documents": DOCUMENTS},
            headers={"authorization": f"Bearer {CHATTER}"},
        )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "missing_scope"
    assert fake.state.calls() == []


@pytest.mark.parametrize("key", [APP, SEARCHER])
async def test_stream_is_a_400_naming_stream_for_a_rerank_client(
    edge_url: str, fake: FakeUpstream, key: str
) -> None:
    # Not a MediaStream call: that would ask an `embed`-only client for the `chat` scope.
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as session:
        answer = await session.post(
            "/v1/rerank",
            json={"model": "reranker", "query": QUERY, "documents": DOCUMENTS, "stream": True},
            headers={"authorization": f"Bearer {key}"},
        )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "stream")
    assert fake.state.calls() == []


async def test_the_routes_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    for path in ("/v1/rerank", "/v2/rerank", "/rerank"):
        schema = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["model", "query", "documents"]
