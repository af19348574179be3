"""Property: any JSON in fields we do not model survives the round trip with its JSON types."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clients import (
    chat_params_from_openai,
    chat_params_to_openai,
    chunk_from_openai,
    chunk_to_openai,
    embedding_params_from_openai,
    embedding_params_to_openai,
)
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from tests.clients.json_equal import assert_same_json

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
REQUEST_KEYS = {
    *("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop"),
    *("n", "seed", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "user"),
    *("metadata", "tools", "tool_choice", "response_format", "stream_options", "stream"),
    "parallel_tool_calls",
}
MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "function_call"}


def extras(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.text(min_size=1).filter(lambda key: key not in reserved)
    return st.dictionaries(keys, JSON, max_size=5)


def wire(message: Any) -> Any:
    return type(message).FromString(message.SerializeToString())


@settings(max_examples=200)
@given(top=extras(REQUEST_KEYS), in_message=extras(MESSAGE_KEYS))
def test_request_extras_survive(top: dict[str, Any], in_message: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi", **in_message}], **top}
    params, _ = chat_params_from_openai(body)
    assert isinstance(wire(params), chat_pb2.ChatParams)
    assert_same_json(chat_params_to_openai(wire(params)), body)


@settings(max_examples=100)
@given(
    top=extras({"id", "object", "created", "model", "choices", "usage"}), delta=extras(MESSAGE_KEYS)
)
def test_chunk_extras_survive(top: dict[str, Any], delta: dict[str, Any]) -> None:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x", **delta}, "finish_reason": None}],
        **top,
    }
    assert_same_json(chunk_to_openai(wire(chunk_from_openai(body))), body)


@settings(max_examples=100)
@given(top=extras({"model", "input", "encoding_format", "dimensions", "user"}))
def test_embedding_extras_survive(top: dict[str, Any]) -> None:
    body = {"model": "m", "input": ["a"], **top}
    params = wire(embedding_params_from_openai(body))
    assert isinstance(params, embeddings_pb2.EmbeddingParams)
    assert_same_json(embedding_params_to_openai(params), body)


@settings(max_examples=100)
@given(
    parameters=st.dictionaries(st.text(), JSON, max_size=5),
    seed=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    temperature=st.floats(allow_nan=False, allow_infinity=False),
)
def test_modelled_values_survive(parameters: dict[str, Any], seed: int, temperature: float) -> None:
    body = {
        "model": "m",
        "messages": [],
        "seed": seed,
        "temperature": temperature,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
    }
    params, _ = chat_params_from_openai(body)
    assert params.tools[0].function.name == "f"
    assert_same_json(chat_params_to_openai(wire(params)), body)
