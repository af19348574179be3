"""A rerank body (Cohere v2's, Jina's document objects) made into `MediaParams` by the codec,
and what it refuses, naming the field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients import InvalidRequestError, media_params_from_openai, rerank_fields
from clients.switchboard.v1 import media_pb2

RERANK = media_pb2.MEDIA_OPERATION_RERANK


def test_documents_become_strings_and_the_rest_travels() -> None:
    body = {
        "model": "docs",
        "query": "q",
        "documents": ["a", {"text": "b"}],
        "top_n": 1,
        "return_documents": False,
        "max_tokens_per_doc": 512,
    }
    params = media_params_from_openai(RERANK, body)
    assert (params.operation, params.model) == (RERANK, "docs")
    assert orjson.loads(params.params_json) == {
        "query": "q",
        "documents": ["a", "b"],
        "top_n": 1,
        "return_documents": False,
        "max_tokens_per_doc": 512,
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"documents": ["a"]}, "query"),
        ({"query": 3, "documents": ["a"]}, "query"),
        ({"query": "q"}, "documents"),
        ({"query": "q", "documents": "a"}, "documents"),
        ({"query": "q", "documents": [{"txt": "a"}]}, "documents[0]"),
        ({"query": "q", "documents": ["a"], "top_n": -1}, "top_n"),
        ({"query": "q", "documents": ["a"], "max_tokens_per_doc": 1.5}, "max_tokens_per_doc"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        media_params_from_openai(RERANK, {"model": "docs", **fields})
    assert caught.value.param == param


def test_the_document_bound_is_the_callers_to_set() -> None:
    fields = {"query": "q", "documents": ["a", "b", "c"]}
    assert rerank_fields(fields)["documents"] == ["a", "b", "c"]
    with pytest.raises(InvalidRequestError, match="at most 2") as caught:
        rerank_fields(fields, max_documents=2)
    assert caught.value.param == "documents"


@pytest.mark.parametrize("stream", [None, False, "false", "False", " FALSE "])
def test_a_stream_flag_that_reads_false_is_taken(stream: Any) -> None:
    # Read as `asks_stream` reads a media form's (the edge's choice of Media): "False" was a 400.
    assert rerank_fields({"query": "q", "documents": ["a"], "stream": stream})["documents"] == ["a"]


@pytest.mark.parametrize("stream", [True, "true", " True ", "yes", 1])
def test_a_stream_flag_that_is_not_false_is_refused_by_name(stream: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        rerank_fields({"query": "q", "documents": ["a"], "stream": stream})
    assert caught.value.param == "stream"
