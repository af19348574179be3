"""RouterService.Media with MEDIA_OPERATION_RERANK over real gRPC: a real router on loopback, the
fake upstream. The answer in Cohere v2's shape whatever the upstream's (Jina/vLLM, Voyage,
Cohere), kinds without rerank passed over, failover, the caller's errors with the field, the
`embed` scope, the texts counted, priced and screened."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest

from clients import details_from_rpc_error, media_params_from_openai
from clients.switchboard.v1 import media_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.engine._tokens import estimate_media_tokens
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._rerank import overlap_score
from router_service.providers._rerank import voyage_rerank
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config

pytestmark = pytest.mark.timeout(60)

RERANK = media_pb2.MEDIA_OPERATION_RERANK
QUERY = "capital of france"
DOCUMENTS = ["Berlin is in Germany", "Paris is the capital of France", "France has wine"]
PRICE = {"input_per_mtok": 2.0, "output_per_mtok": 0.0}
APP, CHATTER, SEARCHER = "sk-app", "sk-chat-only", "sk-search-only"


def config(fake: FakeUpstream, *clients: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A group whose Gemini and Claude deployments cannot rerank, then a vLLM-style server and
    Cohere; Voyage's names; a group of kinds without rerank alone."""
    out = guarded_config(fake.base_url, *clients, **sections)
    out["providers"] |= {
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
        "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]},
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
    }
    out["models"] |= {
        "reranker": {
            "deployments": [
                {"provider": "gem", "model": "gemini-x"},
                {"provider": "claude", "model": "claude-x"},
                {"provider": "alpha", "model": "bge-reranker", "price": PRICE},
                {"provider": "co", "model": "rerank-v3.5"},
            ]
        },
        "voyage": {"deployments": [{"provider": "beta", "model": "rerank-2"}]},
        "no-rerank": {
            "deployments": [
                {"provider": "gem", "model": "gemini-x"},
                {"provider": "claude", "model": "claude-x"},
            ]
        },
    }
    return out


def rerank(model: str = "reranker", **fields: Any) -> pb.MediaRequest:
    body = {"model": model, "query": QUERY, "documents": DOCUMENTS, **fields}
    return pb.MediaRequest(params=media_params_from_openai(RERANK, body))


def raw(params_json: dict[str, Any] | str, model: str = "reranker") -> pb.MediaRequest:
    text = params_json if isinstance(params_json, str) else orjson.dumps(params_json).decode()
    params = media_pb2.MediaParams(operation=RERANK, model=model, params_json=text)
    return pb.MediaRequest(params=params)


def ranked(documents: list[str] = DOCUMENTS) -> list[tuple[int, float]]:
    scores = [overlap_score(QUERY, document) for document in documents]
    return sorted(enumerate(scores), key=lambda pair: -pair[1])


async def refused(router: RouterHandle, request: pb.MediaRequest, key: str = APP) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Media(request, metadata=bearer(key))
    return details_from_rpc_error(caught.value)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    clients = (
        client("app", APP, tpm=10_000),
        client("chatter", CHATTER, scopes=["chat"]),
        client("searcher", SEARCHER, scopes=["embed"]),
    )
    rules = [{"name": "pii", "detect": ["email"], "action": "redact"}]
    server = {"port": 0, "max_rerank_documents": 4}
    return await start_router(config(fake, *clients, guardrails=rules, server=server))


async def test_kinds_without_rerank_are_passed_over_and_the_answer_is_cohere_shaped(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    answer = await router.stub.Media(rerank(top_n=2), metadata=bearer(APP))
    body = orjson.loads(answer.result.body)
    assert answer.result.content_type == "application/json"
    assert body["model"] == "reranker"  # the name asked for, not the upstream's
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == ranked()[:2]
    assert "document" not in body["results"][0]
    assert "meta" not in body  # vLLM bills no search units: its tokens are in `usage`
    assert answer.route.deployment == "alpha/bge-reranker"
    assert answer.route.attempts[-1].deployment == "alpha/bge-reranker"
    assert len(answer.route.attempts) == 3  # Gemini and Claude refused before any call
    assert [c.path for c in fake.state.calls()] == ["/v1/rerank"]
    assert fake.state.calls()[0].body == {
        "query": QUERY,
        "documents": DOCUMENTS,
        "top_n": 2,
        "model": "bge-reranker",
    }


async def test_usage_replaces_the_estimate_and_is_priced_at_the_input_price(
    router: RouterHandle,
) -> None:
    answer = await router.stub.Media(rerank(), metadata=bearer(APP))
    tokens = orjson.loads(answer.result.body)["usage"]["total_tokens"]
    assert tokens == len(f"{QUERY} {' '.join(DOCUMENTS)}".split())
    assert answer.result.usage.total_tokens == tokens
    assert answer.route.cost_usd == pytest.approx(tokens * 2.0 / 1_000_000)
    # Counted at its texts' estimate (the query and each document, as embeddings' inputs),
    # then settled to its usage: the second call's standing shows the first's usage.
    estimate = estimate_media_tokens(rerank().params)
    assert estimate == sum(len(text) // 4 + 1 for text in [QUERY, *DOCUMENTS]) != tokens
    second = await router.stub.Media(rerank(), metadata=bearer(APP))
    assert second.route.rate_limit.remaining_tokens == 10_000 - tokens - estimate


async def test_a_failing_deployment_fails_over_to_cohere(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), model="bge-reranker")
    answer = await router.stub.Media(rerank(return_documents=True), metadata=bearer(APP))
    body = orjson.loads(answer.result.body)
    assert answer.route.deployment == "co/rerank-v3.5"
    assert [c.path for c in fake.state.calls()] == ["/v1/rerank", "/v2/rerank"]
    sent = fake.state.last(path="/v2/rerank").body  # type: ignore[union-attr]
    assert "return_documents" not in sent and sent["model"] == "rerank-v3.5"
    assert body["id"].startswith("fake-rerank-")  # Cohere's own id, kept
    assert [(r["index"], r["document"]["text"]) for r in body["results"]] == [
        (index, DOCUMENTS[index]) for index, _ in ranked()
    ]
    assert "usage" not in body  # Cohere reports search units, no tokens
    assert not answer.result.HasField("usage")


async def test_voyage_is_sent_top_k_and_read_from_data(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    answer = await router.stub.Media(rerank("voyage", top_n=1), metadata=bearer(APP))
    body = orjson.loads(answer.result.body)
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == ranked()[:1]
    assert body["model"] == "voyage" and body["usage"]["total_tokens"] > 0
    sent = fake.state.last(path="/v1/rerank").body  # type: ignore[union-attr]
    assert sent["top_k"] == 1 and "top_n" not in sent  # Voyage's name: it ignores `top_n`


def test_voyage_is_known_by_its_host_or_its_models() -> None:
    assert voyage_rerank("https://api.voyageai.com/v1", "my-alias")
    for model in ("rerank-2.5", "rerank-2.5-lite", "rerank-2-lite", "rerank-lite-1", "rerank-1"):
        assert voyage_rerank("http://10.0.0.5:8000/v1", model)
    for model in ("rerank-v3.5", "rerank-english-v3.0", "BAAI/bge-reranker-v2-m3"):
        assert not voyage_rerank("https://api.jina.ai/v1", model)


async def test_a_group_that_cannot_rerank_is_a_clear_refusal(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    details = await refused(router, rerank("no-rerank"))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "UNSUPPORTED_INPUT"
    assert "offers no /rerank API" in details.message
    assert fake.state.calls() == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"query": QUERY, "documents": []}, "documents"),
        ({"documents": DOCUMENTS}, "query"),
        ({"query": "  ", "documents": DOCUMENTS}, "query"),
        ({"query": QUERY, "documents": DOCUMENTS, "top_n": 0}, "top_n"),
        ({"query": QUERY, "documents": DOCUMENTS, "top_n": True}, "top_n"),
        ({"query": QUERY, "documents": ["a", 3]}, "documents[1]"),
        ({"query": QUERY, "documents": ["a"] * 5}, "documents"),  # max_rerank_documents: 4
        ({"query": QUERY, "documents": DOCUMENTS, "return_documents": "yes"}, "return_documents"),
        ({"query": QUERY, "documents": DOCUMENTS, "stream": True}, "stream"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    router: RouterHandle, fake: FakeUpstream, fields: dict[str, Any], param: str
) -> None:
    details = await refused(router, raw(fields))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.openai_param == param
    assert fake.state.calls() == []


async def test_jina_document_objects_are_taken_from_a_grpc_caller(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    documents = [{"text": text} for text in DOCUMENTS]
    answer = await router.stub.Media(
        raw({"query": QUERY, "documents": documents, "return_documents": True}),
        metadata=bearer(APP),
    )
    body = orjson.loads(answer.result.body)
    assert body["results"][0]["document"] == {"text": DOCUMENTS[ranked()[0][0]]}
    assert fake.state.last(path="/v1/rerank").body["documents"] == DOCUMENTS  # type: ignore[union-attr]


async def test_rerank_needs_the_embed_scope(router: RouterHandle, fake: FakeUpstream) -> None:
    details = await refused(router, rerank(), CHATTER)
    assert details.code is grpc.StatusCode.PERMISSION_DENIED
    assert "`embed` scope" in details.message
    assert fake.state.calls() == []
    answer = await router.stub.Media(rerank(), metadata=bearer(SEARCHER))
    assert answer.route.deployment == "alpha/bge-reranker"
    # The other media operations keep the `chat` scope.
    moderation = pb.MediaRequest(
        params=media_pb2.MediaParams(
            operation=media_pb2.MEDIA_OPERATION_MODERATIONS, model="chain", params_json="{}"
        )
    )
    assert (await refused(router, moderation, SEARCHER)).code is grpc.StatusCode.PERMISSION_DENIED


async def test_the_query_and_documents_are_screened(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    documents = ["a", {"text": "b@example.org"}]
    request = raw({"query": "mail jane@example.com", "documents": documents, "top_n": 2})
    answer = await router.stub.Media(request, metadata=bearer(APP))
    assert list(answer.route.guardrails) == ["pii"]
    sent = fake.state.last(path="/v1/rerank").body  # type: ignore[union-attr]
    assert sent["query"] == "mail [REDACTED:email]"
    assert sent["documents"] == ["a", "[REDACTED:email]"]
    # The documents given back are those sent up: redacted.
    request = raw({"query": "a", "documents": documents, "return_documents": True})
    answer = await router.stub.Media(request, metadata=bearer(APP))
    returned = [r["document"]["text"] for r in orjson.loads(answer.result.body)["results"]]
    assert returned == ["a", "[REDACTED:email]"]


async def test_an_openai_kind_server_without_rerank_is_passed_over(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # OpenAI's own API, or a chat-only server, answers 404 at /rerank: that deployment cannot
    # rerank (not the caller's fault, nor a 404 of the group it named): the next one answers.
    fake.state.set_scenario(Scenario.server_error(404), model="bge-reranker")
    answer = await router.stub.Media(rerank(), metadata=bearer(APP))
    assert answer.route.deployment == "co/rerank-v3.5"
    assert [c.path for c in fake.state.calls()] == ["/v1/rerank", "/v2/rerank"]
    # With no other deployment, the caller's 400 says the group cannot rerank.
    fake.state.set_scenario(Scenario.server_error(404), model="rerank-2")
    details = await refused(router, rerank("voyage"))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "UNSUPPORTED_INPUT"
    assert "/rerank" in details.message


async def test_a_vllm_model_that_cannot_rerank_is_passed_over_and_not_cooled(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # vLLM serving a chat model (or one started with another task) answers 400 "The model does
    # not support Rerank (Score) API": that deployment cannot rerank, the caller's body is fine.
    fake.state.set_scenario(Scenario.rerank_unsupported(), model="bge-reranker")
    answer = await router.stub.Media(rerank(), metadata=bearer(APP))
    assert answer.route.deployment == "co/rerank-v3.5"
    assert answer.route.attempts[-2].outcome == routing_pb2.OUTCOME_UNSUPPORTED_INPUT
    # Not cooled down: the next call tries it again (and its chats go on).
    fake.state.clear_scenarios()
    again = await router.stub.Media(rerank(), metadata=bearer(APP))
    assert again.route.deployment == "alpha/bge-reranker"
    # The caller's own bad field, as vLLM says it, still reaches the caller.
    vllm_400 = {"object": "error", "message": "top_n must be positive", "code": 400}
    fake.state.set_scenario(Scenario(status=400, error_body=vllm_400), model="bge-reranker")
    assert (await refused(router, rerank())).code is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_forms_false_stream_goes_up_as_the_boolean(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # Read as `asks_stream` reads it (not a 400), and sent as JSON's false, not the form's text.
    await router.stub.Media(rerank(stream=" False "), metadata=bearer(APP))
    assert fake.state.calls()[0].body["stream"] is False
