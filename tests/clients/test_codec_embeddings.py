"""Embeddings request/response and the model list."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clients import (
    InvalidRequestError,
    UpstreamFormatError,
    embedding_params_from_openai,
    embedding_params_to_openai,
    embedding_result_from_openai,
    embedding_result_to_openai,
    model_list_to_openai,
)
from clients.switchboard.v1 import embeddings_pb2, router_service_pb2
from tests.clients.json_equal import assert_same_json


@pytest.mark.parametrize(
    ("input_value", "shape"),
    [
        ("hello", "text"),
        (["a", "b"], "texts"),
        ([], "texts"),
        ([1, 2, 3], "tokens"),
        ([[1, 2], [3], []], "token_lists"),
    ],
)
def test_embedding_params_every_input_shape(input_value: Any, shape: str) -> None:
    body = {"model": "text-embedding-3-small", "input": input_value}
    params = embedding_params_from_openai(copy.deepcopy(body))
    wire = embeddings_pb2.EmbeddingParams.FromString(params.SerializeToString())
    assert wire.WhichOneof("input") == shape
    assert_same_json(embedding_params_to_openai(wire), body)


def test_embedding_params_options_and_extras() -> None:
    body = {
        "model": "m",
        "input": "x",
        "encoding_format": "base64",
        "dimensions": 256,
        "user": "u",
        "input_type": "query",
        "truncate": None,
    }
    params = embedding_params_from_openai(copy.deepcopy(body))
    assert (params.encoding_format, params.dimensions) == ("base64", 256)
    assert_same_json(embedding_params_to_openai(params), body)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": 5}, "input"),
        ({"input": ["a", 1]}, "input[1]"),
        ({"input": [1, "a"]}, "input[1]"),
        ({"input": [[1], "a"]}, "input[1]"),
        ({"input": [[1, True]]}, "input[0][1]"),
        ({"input": [None]}, "input[0]"),
        ({"dimensions": "256"}, "dimensions"),
        ({"model": None}, "model"),
    ],
)
def test_embedding_params_type_errors(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        embedding_params_from_openai({"model": "m", "input": "x"} | change)
    assert info.value.param == param


RESULT: dict[str, Any] = {
    "object": "list",
    "data": [
        {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, 1e-300]},
        {"object": "embedding", "index": 1, "embedding": [-0.0, 0.5]},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}


def result_round_trip(
    body: dict[str, Any],
) -> tuple[dict[str, Any], embeddings_pb2.EmbeddingResult]:
    parsed = embedding_result_from_openai(copy.deepcopy(body))
    wire = embeddings_pb2.EmbeddingResult.FromString(parsed.SerializeToString())
    return embedding_result_to_openai(wire), wire


def test_embedding_result_round_trips_exactly() -> None:
    out, result = result_round_trip(RESULT)
    assert_same_json(out, RESULT)
    assert list(result.data[0].values) == [0.0023064255, -0.009327292, 1e-300]


def test_embedding_result_base64_and_extras() -> None:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAEA="}],
        "model": "m",
        "usage": {"prompt_tokens": 2, "total_tokens": 2, "cost": 0.001},
        "id": "emb-1",
    }
    out, result = result_round_trip(body)
    assert result.data[0].base64 == "AACAPwAAAEA="
    assert not result.HasField("usage")  # usage with a key we do not model rides in extras
    assert_same_json(out, body)


def test_embedding_result_malformed() -> None:
    with pytest.raises(UpstreamFormatError) as info:
        embedding_result_from_openai(RESULT | {"data": [{"index": 0, "embedding": ["x"]}]})
    assert info.value.path == "data[0].embedding[0]"


def test_model_list() -> None:
    resp = router_service_pb2.ListModelsResponse()
    resp.models.add(
        id="smart",
        kind=router_service_pb2.MODEL_KIND_POOL,
        members=["gpt", "claude"],
        owned_by="switchboard",
        created=1,
    )
    resp.models.add(id="openai/gpt-4o", kind=router_service_pb2.MODEL_KIND_DEPLOYMENT)
    assert model_list_to_openai(resp) == {
        "object": "list",
        "data": [
            {
                "id": "smart",
                "object": "model",
                "created": 1,
                "owned_by": "switchboard",
                "switchboard": {"kind": "pool", "members": ["gpt", "claude"]},
            },
            {
                "id": "openai/gpt-4o",
                "object": "model",
                "created": 0,
                "owned_by": "",
                "switchboard": {"kind": "deployment", "members": []},
            },
        ],
    }
