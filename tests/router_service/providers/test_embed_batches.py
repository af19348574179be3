"""Embeddings of more texts than one upstream call takes: sent as several calls of at most that
many (Gemini's batchEmbedContents 100, Vertex's :predict 250 or gemini-embedding-001's one,
Cohere's /v2/embed 96), answered as one list in the request's order. One call over the limit is
the upstream's 400 for the whole request, which a caller (OpenAI takes 2,048 inputs a call)
would get for a valid request. The fake upstream refuses more than each takes, as they do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._responses import embedding_vector
from tests.conftest import RouterHandle, StartRouter

TEXTS = [f"text number {i}" for i in range(230)]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    vertex = {
        "kind": "vertex",
        "project": "acme-prod",
        "location": "us-central1",
        "keys": ["ya29.t"],
    }
    providers = {
        "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]},
        "vx": {**vertex, "base_url": fake.url},
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
    }

    def one(provider: str, model: str) -> dict[str, Any]:
        return {"deployments": [{"provider": provider, "model": model}]}

    models = {
        "gemini": one("gem", "gemini-embedding-001"),
        "vertex": one("vx", "text-embedding-005"),
        "vertex-gemini": one("vx", "gemini-embedding-001"),
        "cohere": one("co", "embed-v4.0"),
    }
    return await start_router({"providers": providers, "models": models, "server": {"port": 0}})


def request(model: str, texts: list[str]) -> pb.EmbedRequest:
    values = embeddings_pb2.TextList(values=texts)
    params = embeddings_pb2.EmbeddingParams(model=model, texts=values, dimensions=4)
    return pb.EmbedRequest(params=params)


def vectors(response: pb.EmbedResponse) -> list[list[float]]:
    return [list(item.values) for item in response.result.data]


def expected(texts: list[str]) -> list[Any]:
    return [pytest.approx(embedding_vector(text, 4), abs=1e-6) for text in texts]


async def test_gemini_embeds_in_batches_of_100(router: RouterHandle, fake: FakeUpstream) -> None:
    response = await router.stub.Embed(request("gemini", TEXTS))

    assert vectors(response) == expected(TEXTS)
    calls = fake.state.calls(path="/v1beta/models/gemini-embedding-001:batchEmbedContents")
    sizes = sorted((len(r.body["requests"]) for r in calls), reverse=True)
    assert sizes == [100, 100, 30]
    assert all(r.status == 200 for r in calls)


async def test_vertex_predicts_at_most_250_texts_a_call(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    texts = TEXTS + TEXTS[:30]  # 260

    response = await router.stub.Embed(request("vertex", texts))

    assert vectors(response) == expected(texts)
    assert response.result.usage.prompt_tokens == 3 * 260  # Vertex's token counts, summed
    calls = fake.state.calls(model="text-embedding-005")
    assert sorted(len(r.body["instances"]) for r in calls) == [10, 250]
    assert all(r.status == 200 for r in calls)


async def test_vertex_gemini_embedding_predicts_one_text_a_call(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    texts = TEXTS[:3]

    response = await router.stub.Embed(request("vertex-gemini", texts))

    assert vectors(response) == expected(texts)
    calls = fake.state.calls(model="gemini-embedding-001")
    assert sorted(r.body["instances"][0]["content"] for r in calls) == sorted(texts)
    assert all(len(r.body["instances"]) == 1 and r.status == 200 for r in calls)


async def test_cohere_embeds_in_batches_of_96(router: RouterHandle, fake: FakeUpstream) -> None:
    response = await router.stub.Embed(request("cohere", TEXTS))

    assert vectors(response) == expected(TEXTS)
    assert response.result.usage.prompt_tokens == 3 * 230  # Cohere's billed units, summed
    calls = fake.state.calls(path="/v2/embed")
    assert sorted(len(r.body["texts"]) for r in calls) == [38, 96, 96]
    assert all(r.status == 200 and r.body["output_dimension"] == 4 for r in calls)


async def test_vertex_keeps_a_call_under_20000_tokens(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # 250 texts of 100 words: 25,000 tokens, over the most one :predict call takes.
    texts = [f"{i} " + "word " * 99 for i in range(250)]

    response = await router.stub.Embed(request("vertex", texts))

    assert vectors(response) == expected(texts)
    calls = fake.state.calls(model="text-embedding-005")
    assert len(calls) > 1 and all(r.status == 200 for r in calls)
    assert sum(len(r.body["instances"]) for r in calls) == 250


async def test_vertex_sends_the_callers_own_fields(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """A caller's fields OpenAI does not define are passed on (README): Vertex's per-text
    `task_type` and `title` in each instance, `autoTruncate` in the call's `parameters`; the
    adapter dropped them (a query embedded as a document), and none replaces an input."""
    embed = request("vertex", ["a", "b"])
    own = {"task_type": "RETRIEVAL_QUERY", "autoTruncate": False, "content": "not the input"}
    embed.params.extra_json = json.dumps(own)

    response = await router.stub.Embed(embed)

    assert vectors(response) == expected(["a", "b"])
    body = fake.state.last().body  # type: ignore[union-attr]
    assert body["instances"] == [{"task_type": "RETRIEVAL_QUERY", "content": t} for t in "ab"]
    assert body["parameters"] == {"autoTruncate": False, "outputDimensionality": 4}


@pytest.mark.parametrize("model", ["vertex", "cohere"])
async def test_the_gemini_entrances_hints_go_to_googles_models_alone(
    router: RouterHandle, fake: FakeUpstream, model: str
) -> None:
    """The Gemini entrance carries google-genai's `task_type` and `title` in `gemini_only`:
    Vertex's instances take them (`task_type`, `title`); another kind gets neither, nor a
    `gemini_only` (Cohere refuses a field it does not know)."""
    embed = request(model, ["a", "b"])
    embed.params.extra_json = json.dumps({"gemini_only": {"taskType": "CLUSTERING", "title": "T"}})

    response = await router.stub.Embed(embed)

    assert vectors(response) == expected(["a", "b"])
    body = fake.state.last().body  # type: ignore[union-attr]
    if model == "vertex":
        hints = {"task_type": "CLUSTERING", "title": "T"}
        assert body["instances"] == [{**hints, "content": t} for t in "ab"]
    else:
        assert not {"gemini_only", "taskType", "title"} & set(body)
