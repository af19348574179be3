"""The fake upstream's rerank: Jina's and vLLM's shape at `/rerank` and `/v1/rerank` (Voyage's
for its `rerank-2*` models), Cohere's at `/v2/rerank`, scored by word overlap, and the
scenario controls applied as to every other endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._rerank import overlap_score

QUERY = "red fox"
DOCUMENTS = ["a blue whale", "the quick red fox", "red wine"]
BODY = {"model": "bge-reranker", "query": QUERY, "documents": DOCUMENTS}


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": "Bearer k1"}
    async with httpx.AsyncClient(base_url=fake.url, headers=headers, timeout=5.0) as client:
        yield client


def test_the_score_is_the_share_of_query_words_found() -> None:
    assert [overlap_score(QUERY, d) for d in DOCUMENTS] == [0.0, 1.0, 0.5]
    assert overlap_score("", "anything") == 0.0


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank"])
async def test_jina_and_vllm_shape_best_first_cut_to_top_n(
    http: httpx.AsyncClient, path: str
) -> None:
    answer = (await http.post(path, json={**BODY, "top_n": 2, "return_documents": True})).json()
    assert answer["model"] == "bge-reranker"
    assert answer["results"] == [
        {"index": 1, "relevance_score": 1.0, "document": {"text": "the quick red fox"}},
        {"index": 2, "relevance_score": 0.5, "document": {"text": "red wine"}},
    ]
    assert answer["usage"] == {"total_tokens": 2 + 3 + 4 + 2}


async def test_jina_document_objects_are_read(http: httpx.AsyncClient) -> None:
    documents = [{"text": text} for text in DOCUMENTS]
    answer = (await http.post("/v1/rerank", json={**BODY, "documents": documents})).json()
    assert [r["index"] for r in answer["results"]] == [1, 2, 0]
    assert "document" not in answer["results"][0]


async def test_voyage_models_answer_in_data(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/v1/rerank", json={**BODY, "model": "rerank-2", "top_k": 1})).json()
    assert answer["object"] == "list" and "results" not in answer
    assert answer["data"] == [{"index": 1, "relevance_score": 1.0}]
    # Voyage reads `top_k` alone: `top_n` is not its name, and cuts nothing.
    lite = {**BODY, "model": "rerank-lite-1", "top_n": 1}
    assert len((await http.post("/v1/rerank", json=lite)).json()["data"]) == len(DOCUMENTS)


async def test_cohere_shape_at_v2(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    answer = (await http.post("/v2/rerank", json={**BODY, "model": "rerank-v3.5"})).json()
    assert answer["id"].startswith("fake-rerank-")
    assert [r["index"] for r in answer["results"]] == [1, 2, 0]
    assert answer["meta"]["billed_units"] == {"search_units": 1}
    assert "usage" not in answer
    record = fake.state.last(path="/v2/rerank")
    assert record is not None and (record.key, record.model) == ("k1", "rerank-v3.5")


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "documents": DOCUMENTS},
        {"model": "m", "query": QUERY, "documents": []},
        {"model": "m", "query": QUERY, "documents": DOCUMENTS, "top_n": 0},
    ],
)
@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank"])
async def test_bad_requests_are_400(http: httpx.AsyncClient, path: str, body: object) -> None:
    assert (await http.post(path, json=body)).status_code == 400


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
async def test_scenarios_apply(http: httpx.AsyncClient, fake: FakeUpstream, path: str) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="7"), model="bge-reranker")
    limited = await http.post(path, json=BODY)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    fake.state.set_scenario(Scenario.server_error(503), key="k1")
    assert (await http.post(path, json={**BODY, "model": "other"})).status_code == 503
