"""Gemini API bodies written with the fields' proto names (`system_instruction`,
`inline_data.mime_type`, `generation_config.max_output_tokens`), as Google's own curl examples
write them and as Google's JSON parser takes them, over raw HTTP to the edge: the same request
as its lowerCamelCase twin; the caller's own JSON (a function's args, a schema's property
names) keeps its keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_gemini_sdk import config

HEADERS = {"x-goog-api-key": "sk-caller"}
PNG = "iVBORw0KGgo="


@pytest.fixture
async def http(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[httpx.AsyncClient]:
    edge = await start_edge(await start_router(config(fake)))
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        yield client


async def test_a_curl_body_with_proto_names_is_answered(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    body = {
        "system_instruction": {"parts": [{"text": "You are a cat."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inline_data": {"mime_type": "image/png", "data": PNG}},
                    {"text": "hello"},
                ],
            }
        ],
        "generation_config": {"max_output_tokens": 64, "stop_sequences": ["END"], "top_k": 3},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    answer = await http.post("/v1beta/models/chain:generateContent", json=body, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidates"][0]["content"]["parts"] == [{"text": "Echo: hello"}]
    sent = fake.state.last()
    assert sent is not None
    system, user = sent.body["messages"]
    assert system == {"role": "system", "content": "You are a cat."}
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert user["content"] == [image, {"type": "text", "text": "hello"}]
    assert (sent.body["max_tokens"], sent.body["stop"], sent.body["top_k"]) == (64, ["END"], 3)


async def test_a_tool_with_proto_names_keeps_the_callers_own_keys(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city_name": "Oslo"}))
    schema = {
        "type": "OBJECT",
        "properties": {"city_name": {"type": "STRING", "max_length": 40}},
        "required": ["city_name"],
    }
    tools = [{"function_declarations": [{"name": "get_weather", "parameters": schema}]}]
    calling = {"function_calling_config": {"mode": "ANY"}}
    ask: dict[str, Any] = {"role": "user", "parts": [{"text": "Weather?"}]}
    body = {"contents": [ask], "tools": tools, "tool_config": calling}
    path = "/v1beta/models/chain:streamGenerateContent?alt=sse"
    answer = await http.post(path, json=body, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    assert '"functionCall"' in answer.text and '"city_name":"Oslo"' in answer.text
    sent = fake.state.last()
    assert sent is not None
    parameters = sent.body["tools"][0]["function"]["parameters"]
    assert parameters["properties"] == {"city_name": {"type": "string", "maxLength": 40}}
    assert sent.body["tool_choice"] == "required"
    call = {"function_call": {"name": "get_weather", "args": {"city_name": "Oslo"}}}
    result = {"name": "get_weather", "response": {"temp_c": 3}}
    turns = [ask, {"role": "model", "parts": [call]}, {"parts": [{"function_response": result}]}]
    answer = await http.post(
        "/v1beta/models/chain:generateContent",
        json={"contents": turns, "tools": tools},
        headers=HEADERS,
    )
    assert answer.status_code == 200, answer.text
    sent = fake.state.last()
    assert sent is not None
    assert sent.body["messages"][1]["tool_calls"][0]["function"]["arguments"] == (
        '{"city_name":"Oslo"}'
    )
    assert sent.body["messages"][2]["content"] == '{"temp_c":3}'


async def test_count_and_embed_take_proto_names(http: httpx.AsyncClient) -> None:
    hello = {"contents": [{"parts": [{"text": "hello world"}]}]}
    counted = await http.post(
        "/v1beta/models/chain:countTokens",
        json={"generate_content_request": {"model": "models/chain", **hello}},
        headers=HEADERS,
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["totalTokens"] > 0
    request = {"content": {"parts": [{"text": "a"}]}, "output_dimensionality": 8}
    embedded = await http.post(
        "/v1beta/models/embedder:embedContent",
        json={**request, "task_type": "RETRIEVAL_QUERY"},
        headers=HEADERS,
    )
    assert embedded.status_code == 200, embedded.text
    assert len(embedded.json()["embedding"]["values"]) == 8


async def test_a_field_given_by_both_names_is_refused(http: httpx.AsyncClient) -> None:
    system = {"parts": [{"text": "Be brief."}]}
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "systemInstruction": system,
        "system_instruction": system,
    }
    answer = await http.post("/v1beta/models/chain:generateContent", json=body, headers=HEADERS)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert "systemInstruction" in error["message"] and "system_instruction" in error["message"]


async def test_a_body_nested_too_deep_is_refused_not_failed(http: httpx.AsyncClient) -> None:
    """As deep as the JSON parser takes (1000 levels), where reading the names one level at a
    time would run out of stack: a 400, as Google's own parser refuses past its depth."""
    depth = 1000
    nested = b"[" * depth + b"]" * depth
    body = b'{"contents": [{"parts": [{"text": "hi"}]}], "tools": ' + nested + b"}"
    path = "/v1beta/models/chain:generateContent"
    answer = await http.post(path, content=body, headers=HEADERS)
    assert answer.status_code == 400, answer.text
    assert "nested more than 100 levels" in answer.json()["error"]["message"]


async def test_json_schema_keywords_keep_the_callers_own_keys(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """A schema's `$defs` (Vertex's Schema has them, a map as `properties` is) and the values
    JSON Schema holds (`const`, `enum`, `examples`) are the caller's: a `$ref` still finds its
    definition, a constant is still the caller's object."""
    item = {"type": "OBJECT", "properties": {"unit_price": {"type": "NUMBER"}}}
    schema = {
        "type": "OBJECT",
        "properties": {
            "line": {"$ref": "#/$defs/line_item"},
            "kind": {"const": {"kind_id": 1}, "enum": [{"kind_id": 1}], "examples": [{"a_b": 2}]},
        },
        "$defs": {"line_item": item},
    }
    config = {"response_mime_type": "application/json", "response_schema": schema}
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generation_config": config}
    answer = await http.post("/v1beta/models/chain:generateContent", json=body, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    sent = fake.state.last()
    assert sent is not None
    sent_schema = sent.body["response_format"]["json_schema"]["schema"]
    assert list(sent_schema["$defs"]) == ["line_item"]
    assert sent_schema["$defs"]["line_item"]["properties"] == {"unit_price": {"type": "number"}}
    kind = sent_schema["properties"]["kind"]
    assert kind == {"const": {"kind_id": 1}, "enum": [{"kind_id": 1}], "examples": [{"a_b": 2}]}


@pytest.mark.parametrize("field", ["parametersJsonSchema", "parameters_json_schema"])
async def test_a_json_schema_nested_too_deep_is_refused_not_failed(
    http: httpx.AsyncClient, field: str
) -> None:
    """A JSON Schema is the caller's own JSON, its keys kept, yet read level by level: as deep
    as the JSON parser takes, a 400 too, not the edge's stack run out (a 500)."""
    depth = 1000
    schema = b'{"items":' * depth + b"{}" + b"}" * depth
    tools = b'[{"functionDeclarations": [{"name": "f", "%s": %s}]}]' % (field.encode(), schema)
    body = b'{"contents": [{"parts": [{"text": "hi"}]}], "tools": ' + tools + b"}"
    path = "/v1beta/models/chain:generateContent"
    answer = await http.post(path, content=body, headers=HEADERS)
    assert answer.status_code == 400, answer.text
    assert "nested more than 100 levels" in answer.json()["error"]["message"]
