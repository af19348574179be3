"""A rerank's upstream body and the one answer made of each upstream's (`providers/_rerank.py`):
pure functions, no I/O. Over the wire: tests/router_service/server/test_rerank_rpc.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import media_pb2
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import MediaCall
from router_service.providers._rerank import rerank_body, rerank_result

DOCUMENTS = ["zero", "one", "two"]


def call(**fields: Any) -> MediaCall:
    body = {"query": "q", "documents": DOCUMENTS, **fields}
    params = media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_RERANK,
        model="docs",
        params_json=orjson.dumps(body).decode(),
    )
    return MediaCall("up-model", "sk-x", params, 10.0, requested_model="docs")


def answer(data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(rerank_result(data, call(**fields)).body)
    return result


def test_the_body_has_the_upstream_model_and_plain_documents() -> None:
    documents = [{"text": "zero"}, "one"]
    body = rerank_body(call(documents=documents, return_documents=True, max_tokens_per_doc=9))
    assert body == {
        "query": "q",
        "documents": ["zero", "one"],
        "return_documents": True,
        "max_tokens_per_doc": 9,
        "model": "up-model",
    }
    assert "return_documents" not in rerank_body(call(return_documents=True), cohere=True)


def test_results_are_sorted_cut_and_given_their_documents() -> None:
    scored = [{"index": i, "relevance_score": s} for i, s in enumerate([0.2, 0.9, 0.5])]
    data = {"results": scored, "usage": {"total_tokens": 12}}
    out = answer(data, top_n=2, return_documents=True)
    assert out["model"] == "docs"
    assert out["results"] == [
        {"index": 1, "relevance_score": 0.9, "document": {"text": "one"}},
        {"index": 2, "relevance_score": 0.5, "document": {"text": "two"}},
    ]
    assert out["usage"] == {"total_tokens": 12}
    assert "meta" not in out  # no search units billed: none made up
    result = rerank_result(data, call())
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (12, 12)


def test_cohere_and_voyage_answers() -> None:
    cohere = {
        "id": "co-1",
        "results": [{"index": 0, "relevance_score": 0.1}],
        "meta": {"billed_units": {"search_units": 2}},
    }
    out = answer(cohere)
    assert (out["id"], out["meta"]["billed_units"]["search_units"]) == ("co-1", 2)
    assert "usage" not in out
    voyage = {"object": "list", "data": [{"index": 2, "relevance_score": 1}], "usage": {}}
    assert answer(voyage)["results"] == [{"index": 2, "relevance_score": 1.0}]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"results": "no"},
        {"results": [{"index": 3, "relevance_score": 0.1}]},  # names no document sent
        {"results": [{"index": True, "relevance_score": 0.1}]},
        {"results": [{"index": 0, "relevance_score": "high"}]},
        {"results": [{"index": 0}]},
        {"results": ["zero"]},
        {"results": []},  # no document scored: no answer (each upstream scores every one sent)
        {"data": []},
        # A document scored twice: the caller would get it twice, and fewer of the others.
        {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.2}]},
    ],
)
def test_an_unreadable_answer_is_the_upstreams_failure(data: dict[str, Any]) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        rerank_result(data, call())
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR
