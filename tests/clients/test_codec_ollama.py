"""The Ollama codec's translation tables: Ollama bodies → OpenAI chat and embeddings bodies,
and the chat answers and stream chunks back as Ollama's."""

from __future__ import annotations

from typing import Any

import pytest

from clients import InvalidRequestError
from clients.codec.ollama import (
    chat_request_from_ollama,
    embed_body,
    ollama_field,
)
from clients.codec.ollama._request import chat_body, generate_body

HI = [{"role": "user", "content": "hi"}]
PNG = "iVBORw0KGgoAAAANSUhEUg"
JPEG = "/9j/4AAQSkZJRg"


def chat(**fields: Any) -> dict[str, Any]:
    return chat_body({"model": "m", "messages": HI, **fields}, stream=False)


def test_options_become_openais_keys_and_a_runners_own_are_ignored() -> None:
    options = {
        "temperature": 1,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 3,
        "num_predict": 100,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "stop": "END",
    }
    runners = {"num_ctx": 4096, "min_p": 0.1, "tfs_z": 1.0, "rope_frequency_base": 1e4}
    body = chat(options=options | runners | {"a_clients_own": [1]})
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == {
        "temperature": 1.0,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 3,
        "max_tokens": 100,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "stop": ["END"],
    }
    assert "max_tokens" not in chat(options={"num_predict": -1})  # no limit
    assert "max_tokens" not in chat(options={"num_predict": -2})
    assert "max_tokens" not in chat(options={"num_predict": 0})  # Ollama's runner: no limit


@pytest.mark.parametrize(
    ("think", "effort"),
    [(True, None), (False, "none"), ("low", "low"), ("medium", "medium"), ("high", "high")],
)
def test_think_is_a_reasoning_effort(think: Any, effort: str | None) -> None:
    assert chat(think=think).get("reasoning_effort") == effort


def test_format_is_a_response_format() -> None:
    schema = {"type": "object"}
    assert chat(format="json")["response_format"] == {"type": "json_object"}
    assert chat(format=schema)["response_format"]["json_schema"] == {
        "name": "response",
        "schema": schema,
    }
    assert "response_format" not in chat(format="")


def test_a_stream_asks_for_the_usage() -> None:
    body = chat_body({"model": "m", "messages": HI}, stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_images_are_data_urls_by_their_first_bytes() -> None:
    message = {"role": "user", "content": "", "images": [PNG, JPEG]}
    (user,) = chat(messages=[message])["messages"]
    assert [part["image_url"]["url"] for part in user["content"]] == [
        f"data:image/png;base64,{PNG}==",
        f"data:image/jpeg;base64,{JPEG}==",  # padded, as a data URL is
    ]
    with pytest.raises(InvalidRequestError) as refused:
        chat(messages=[{"role": "assistant", "content": "", "images": [PNG]}])
    assert refused.value.param == "messages[0].images"


def test_tool_calls_and_their_results_pair_by_name() -> None:
    calls = [
        {"function": {"name": "a", "arguments": {"x": 1}}},
        {"function": {"name": "b", "arguments": {}}},
        {"id": "kept", "function": {"name": "a", "arguments": {"x": 2}}},
    ]
    messages = chat(
        messages=[
            *HI,
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "content": "B", "tool_name": "b"},
            {"role": "tool", "content": "A1", "tool_name": "a"},
            {"role": "tool", "content": "A2"},  # no name: the earliest still open
        ]
    )["messages"]
    made = messages[1]["tool_calls"]
    assert [c["id"] for c in made] == ["call_1_0", "call_1_1", "kept"]
    assert made[0]["function"] == {"name": "a", "arguments": '{"x":1}'}
    answered = [(m["tool_call_id"], m["content"]) for m in messages[2:]]
    assert answered == [("call_1_1", "B"), ("call_1_0", "A1"), ("kept", "A2")]


def test_generate_is_a_system_and_a_user_message() -> None:
    body = generate_body(
        {"model": "m", "prompt": "p", "system": "s", "images": [PNG], "raw": False}, False
    )
    assert body["messages"][0] == {"role": "system", "content": "s"}
    assert body["messages"][1]["content"][0] == {"type": "text", "text": "p"}
    refused_fields = (("suffix", "x"), ("template", "{{ .Prompt }}"), ("context", [1]))
    for field, value in (*refused_fields, ("raw", True)):
        with pytest.raises(InvalidRequestError) as refused:
            generate_body({"model": "m", "prompt": "p", field: value}, False)
        assert refused.value.param == field
    assert generate_body({"model": "m", "prompt": "p", "suffix": ""}, False)


def test_embed_bodies() -> None:
    assert embed_body({"model": "e", "input": ["a"], "dimensions": 4}, legacy=False) == {
        "model": "e",
        "input": ["a"],
        "dimensions": 4,
    }
    assert embed_body({"model": "e", "prompt": "a"}, legacy=True) == {"model": "e", "input": "a"}
    with pytest.raises(InvalidRequestError) as refused:
        embed_body({"model": "e", "prompt": "a"}, legacy=False)  # the legacy field: not read
    assert refused.value.param == "input"


@pytest.mark.parametrize(
    ("param", "generate", "field"),
    [
        ("max_tokens", False, "options.num_predict"),
        ("temperature", False, "options.temperature"),
        ("stop[2]", False, "options.stop"),
        ("response_format.json_schema", False, "format"),
        ("reasoning_effort", False, "think"),
        ("messages[1].content", False, "messages[1].content"),
        ("messages[1].content", True, "prompt"),
        ("tools[0].function.name", False, "tools[0].function.name"),
        ("n", False, None),
    ],
)
def test_openai_params_are_said_as_ollamas_fields(
    param: str, generate: bool, field: str | None
) -> None:
    assert ollama_field(param, generate) == field


def test_a_bad_option_type_names_the_option() -> None:
    body = {"model": "m", "messages": HI, "options": {"seed": "x"}}
    with pytest.raises(InvalidRequestError) as refused:
        chat_request_from_ollama(body, False, False)
    assert refused.value.param == "options.seed" and "options.seed" in refused.value.message


def test_ollamas_own_defaults_and_number_types() -> None:
    """Ollama's `seed: -1` is a random seed and `top_k: 0` no top-k (llama.cpp's): neither is
    sent on; an integer option written as a float (Go's JSON numbers: Ollama takes `40.0`)
    is that integer."""
    body = chat(options={"seed": -1, "top_k": 0, "num_predict": 64.0, "temperature": 0.5})
    assert "seed" not in body and "top_k" not in body
    assert body["max_tokens"] == 64 and isinstance(body["max_tokens"], int)
    whole = chat(options={"seed": 7.0, "top_k": 40.0})
    assert (whole["seed"], whole["top_k"]) == (7, 40)
    assert "top_k" not in chat(options={"top_k": -1})
    with pytest.raises(InvalidRequestError) as refused:
        chat(options={"num_predict": 1.5})
    assert refused.value.param == "options.num_predict"


def test_a_result_naming_its_call_by_id_closes_it_for_the_results_named_by_name() -> None:
    calls = [
        {"id": "c1", "function": {"name": "a", "arguments": {}}},
        {"id": "c2", "function": {"name": "a", "arguments": {}}},
    ]
    messages = chat(
        messages=[
            *HI,
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "content": "A1", "tool_call_id": "c1"},
            {"role": "tool", "content": "A2", "tool_name": "a"},  # the one still open: c2
        ]
    )["messages"]
    answered = [(m["tool_call_id"], m["content"]) for m in messages[2:]]
    assert answered == [("c1", "A1"), ("c2", "A2")]
