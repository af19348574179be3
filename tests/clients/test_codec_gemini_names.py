"""`camel_case`, the Gemini entrance's reading of a body's field names, on the hot path of every
Gemini API call (issue #10): a body written in lowerCamelCase, the usual one, is given back as
it is, not rebuilt; one with a proto name copies the way down to it, and the caller's body is
left as it was."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clients import InvalidRequestError
from clients.codec.gemini import camel_case

SCHEMA = {"type": "OBJECT", "properties": {"city_name": {"type": "STRING"}}}
TOOLS = [{"functionDeclarations": [{"name": "get_weather", "parameters": SCHEMA}]}]
CALL = {"functionCall": {"name": "get_weather", "args": {"city_name": "Oslo"}}}
RESULT = {"functionResponse": {"name": "get_weather", "response": {"temp_c": 3}}}


def body() -> dict[str, Any]:
    """A lowerCamelCase body whose caller's own keys (args, response, property names) are
    snake_case: they are the caller's, nothing to rename."""
    contents = [
        {"role": "user", "parts": [{"text": "Weather in my_city?"}]},
        {"role": "model", "parts": [CALL]},
        {"role": "user", "parts": [RESULT]},
    ]
    config = {"temperature": 0.5, "thinkingConfig": {"thinkingBudget": 0}}
    return {"contents": contents, "tools": TOOLS, "generationConfig": config}


def test_a_body_in_lower_camel_case_is_given_back_as_it_is() -> None:
    sent = body()
    assert camel_case(sent) is sent


def test_a_proto_name_copies_only_the_way_down_to_it() -> None:
    sent = body()
    sent["generationConfig"]["thinking_config"] = sent["generationConfig"].pop("thinkingConfig")
    before = copy.deepcopy(sent)
    out = camel_case(sent)
    assert out["generationConfig"] == {"temperature": 0.5, "thinkingConfig": {"thinkingBudget": 0}}
    assert out["contents"] is sent["contents"] and out["tools"] is sent["tools"]
    assert sent == before  # the caller's body as it was


def test_names_deep_in_lists_and_maps_are_renamed_the_callers_keys_kept() -> None:
    schema = {"type": "OBJECT", "properties": {"city_name": {"type": "STRING", "max_length": 9}}}
    sent = body()
    sent["contents"][2]["parts"].append({"inline_data": {"mime_type": "image/png", "data": "x"}})
    sent["tools"] = [{"function_declarations": [{"name": "f", "parameters": schema}]}]
    out = camel_case(sent)
    assert out["contents"][2]["parts"] == [
        RESULT,
        {"inlineData": {"mimeType": "image/png", "data": "x"}},
    ]
    assert out["contents"][:2] == sent["contents"][:2]
    assert out["contents"][0] is sent["contents"][0]
    parameters = out["tools"][0]["functionDeclarations"][0]["parameters"]
    assert parameters["properties"] == {"city_name": {"type": "STRING", "maxLength": 9}}


def test_a_name_given_both_ways_deep_in_a_body_is_refused() -> None:
    sent = body()
    blob = {"mimeType": "image/png", "data": "x"}
    sent["contents"][0]["parts"].append({"inlineData": blob, "inline_data": blob})
    with pytest.raises(InvalidRequestError) as refused:
        camel_case(sent)
    assert refused.value.param == "inlineData"
    assert "given twice, as inlineData and as inline_data" in refused.value.message
