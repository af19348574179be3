"""Where guardrails find texts beyond messages, without a server: a chat request's tool
definitions (description, every string of the parameters schema), its response_format schema,
the fields passed through verbatim (extra_json, recursively), and a transcription's answer
(JSON or text body). Paths name each text; a rewrite touches only JSON a rule changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from clients import chat_params_from_openai, chat_params_to_openai
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service.config import GuardrailConfig
from router_service.errors import GuardrailBlockedError
from router_service.guardrails import (
    AnswerGuard,
    Guardrails,
    Rule,
    TextSlot,
    chat_texts,
    embedding_texts,
    transcript_texts,
)

pytestmark = pytest.mark.timeout(30)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane@example.com"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": f"ask {EMAIL}", "default": "Paris"},
        "unit": {"type": "string", "enum": ["c", f"mail {EMAIL}"]},
        "nested": {"type": "array", "items": {"examples": [{"deep": EMAIL}]}},
    },
    "required": ["city"],
}


def _rule(name: str, action: str, *detectors: str) -> dict[str, Any]:
    return {"name": name, "detect": list(detectors), "action": action}


PII = _rule("pii", "redact", "email")
SECRETS = _rule("secrets", "block", "api_key")


def _params(**fields: Any) -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return chat_pb2.ChatParams(model="m", messages=[message], **fields)


def _tool(description: str | None = None, schema: dict[str, Any] | None = None) -> chat_pb2.Tool:
    function = chat_pb2.FunctionDefinition(name="weather", description=description)
    if schema is not None:
        function.parameters_json = orjson.dumps(schema).decode()
    return chat_pb2.Tool(type="function", function=function)


def _redacting(slots: Iterator[TextSlot]) -> list[str]:
    """Each slot's path, each email replaced as the screen does (before the next slot)."""
    paths = []
    for slot in slots:
        paths.append(slot.path)
        if EMAIL in slot.text:
            slot.replace(slot.text.replace(EMAIL, "[REDACTED:email]"))
    return paths


def test_tool_definitions_are_texts_by_path_and_rewritten_in_place() -> None:
    params = _params(tools=[_tool("plain"), _tool(f"from {EMAIL}", SCHEMA)])
    paths = _redacting(chat_texts(params))
    assert paths == [
        "messages[0].content",
        "tools[0].function.name",
        "tools[0].function.description",
        "tools[1].function.name",
        "tools[1].function.description",
        "tools[1].function.parameters.type",
        "tools[1].function.parameters.properties.city.type",
        "tools[1].function.parameters.properties.city.description",
        "tools[1].function.parameters.properties.city.default",
        "tools[1].function.parameters.properties.unit.type",
        "tools[1].function.parameters.properties.unit.enum[0]",
        "tools[1].function.parameters.properties.unit.enum[1]",
        "tools[1].function.parameters.properties.nested.type",
        "tools[1].function.parameters.properties.nested.items.examples[0].deep",
        "tools[1].function.parameters.required[0]",
    ]
    function = params.tools[1].function
    assert function.description == "from [REDACTED:email]"
    schema = orjson.loads(function.parameters_json)
    city, unit = schema["properties"]["city"], schema["properties"]["unit"]
    assert city == {"type": "string", "description": "ask [REDACTED:email]", "default": "Paris"}
    assert unit["enum"] == ["c", "mail [REDACTED:email]"]
    assert schema["properties"]["nested"]["items"]["examples"] == [{"deep": "[REDACTED:email]"}]
    assert list(schema) == list(SCHEMA)  # keys and their order kept


def test_a_function_the_contract_does_not_model_is_screened_in_the_tool_extras() -> None:
    """A function definition with a key the proto lacks travels whole in the tool's extra_json:
    its texts have the same paths, and the upstream body gets them redacted."""
    function = {"name": "f", "description": f"by {EMAIL}", "x-owner": EMAIL, "parameters": SCHEMA}
    params, _ = chat_params_from_openai(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": function}],
        }
    )
    assert params.tools[0].extra_json  # not modelled: the whole function rides there
    paths = _redacting(chat_texts(params))
    assert paths[1:4] == [
        "tools[0].function.name",
        "tools[0].function.description",
        "tools[0].function.x-owner",
    ]
    sent = chat_params_to_openai(params)["tools"][0]["function"]
    assert sent["description"] == "by [REDACTED:email]" and sent["x-owner"] == "[REDACTED:email]"
    assert sent["parameters"]["properties"]["city"]["description"] == "ask [REDACTED:email]"


def test_json_no_rule_changed_is_not_written_again() -> None:
    spaced = '{"type":  "object", "description": "plain"}'
    params = _params(tools=[_tool()], extra_json='{"a": [1, 2.5, true, null]}')
    params.tools[0].function.parameters_json = spaced
    _redacting(chat_texts(params))
    assert params.tools[0].function.parameters_json == spaced
    assert params.extra_json == '{"a": [1, 2.5, true, null]}'


def test_pass_through_fields_are_walked_recursively_keys_left_alone() -> None:
    extra = {
        "prediction": {"type": "content", "content": f"draft to {EMAIL}"},
        EMAIL: 42,  # a key: a path, never a text
        "seed_like": 12345678901234,
        "deep": [[{"x": [EMAIL]}]],
    }
    message = chat_pb2.ChatMessage(
        role=chat_pb2.ROLE_ASSISTANT, text="ok", extra_json=orjson.dumps({"note": EMAIL}).decode()
    )
    params = _params(extra_json=orjson.dumps(extra).decode())
    params.messages.append(message)
    paths = _redacting(chat_texts(params))
    assert paths == [
        "messages[0].content",
        "messages[1].content",
        "messages[1].note",
        "prediction.type",
        "prediction.content",
        "deep[0][0].x[0]",
    ]
    sent = orjson.loads(params.extra_json)
    assert sent["prediction"]["content"] == "draft to [REDACTED:email]"
    assert sent[EMAIL] == 42 and sent["seed_like"] == 12345678901234  # an integer stays one
    assert sent["deep"] == [[{"x": ["[REDACTED:email]"]}]]
    assert orjson.loads(params.messages[1].extra_json) == {"note": "[REDACTED:email]"}


def test_a_hosted_item_handed_back_is_screened_by_its_texts_alone() -> None:
    search = {"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": f"mail {EMAIL}"}}  # fmt: skip
    shot = {"type": "computer_screenshot", "image_url": f"data:image/png;base64,{EMAIL}"}
    ran = {"type": "computer_call_output", "call_id": f"call_{EMAIL}", "output": shot}
    extra = {"hosted_items": [search, ran]}
    message = chat_pb2.ChatMessage(
        role=chat_pb2.ROLE_ASSISTANT, extra_json=orjson.dumps(extra).decode()
    )
    params = _params()
    params.messages.append(message)

    paths = _redacting(chat_texts(params))

    assert paths == ["messages[0].content", "messages[1].hosted_items[0].action.query"]
    sent = orjson.loads(params.messages[1].extra_json)["hosted_items"]
    assert sent[0]["action"]["query"] == "mail [REDACTED:email]"
    assert sent[1] == ran  # its call id and screenshot: an upstream's to read, not texts


def test_response_format_schema_and_embedding_extras_are_texts() -> None:
    schema = chat_pb2.JsonSchemaFormat(
        name="answer", description=f"for {EMAIL}", schema_json='{"title": "t"}'
    )
    fmt = chat_pb2.ResponseFormat(
        type=chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=schema
    )
    params = _params(response_format=fmt)
    assert _redacting(chat_texts(params))[1:] == [
        "response_format.json_schema.description",
        "response_format.json_schema.schema.title",
    ]
    assert params.response_format.json_schema.description == "for [REDACTED:email]"
    embed = embeddings_pb2.EmbeddingParams(model="e", text="x", extra_json='{"tag": "jane"}')
    assert _redacting(embedding_texts(embed)) == ["input", "tag"]


def test_json_that_is_not_json_is_left_to_the_codec() -> None:
    params = _params(tools=[_tool()], extra_json="not JSON")
    params.tools[0].function.parameters_json = '"a string, not a schema"'
    assert _redacting(chat_texts(params)) == ["messages[0].content", "tools[0].function.name"]


def test_a_block_names_the_path_and_masks_a_key_that_holds_a_find() -> None:
    guardrails = Guardrails([GuardrailConfig.model_validate(SECRETS)])
    schema = {"properties": {"city": {"description": f"use {AWS_KEY}"}}}
    params = _params(tools=[_tool(schema=schema)])
    with pytest.raises(GuardrailBlockedError) as caught:
        guardrails.screen(chat_texts(params), "", "m")
    assert caught.value.param == "tools[0].function.parameters.properties.city.description"
    keyed = _params(extra_json=orjson.dumps({AWS_KEY: {"v": f"x {AWS_KEY}"}}).decode())
    with pytest.raises(GuardrailBlockedError) as caught:
        guardrails.screen(chat_texts(keyed), "", "m")
    assert caught.value.param == "[REDACTED:api_key].v"
    assert AWS_KEY not in caught.value.message


def test_a_text_repeated_across_tools_is_redacted_everywhere() -> None:
    """A clean text is screened once per request; one with a find, wherever it is."""
    guardrails = Guardrails([GuardrailConfig.model_validate(PII)])
    same = f"owner {EMAIL}"
    params = _params(tools=[_tool(same, {"enum": [same, "x"]}), _tool(same, {"enum": ["x"]})])
    assert guardrails.screen(chat_texts(params), "", "m") == ("pii",)
    for tool in params.tools:
        assert tool.function.description == "owner [REDACTED:email]"
    assert orjson.loads(params.tools[0].function.parameters_json)["enum"][0] == (
        "owner [REDACTED:email]"
    )


def _result(content_type: str, body: bytes) -> media_pb2.MediaResult:
    return media_pb2.MediaResult(content_type=content_type, body=body)


def test_a_transcript_json_is_screened_by_its_texts_and_loses_its_words() -> None:
    answer = {
        "text": f"write to {EMAIL} today",
        "segments": [{"id": 0, "text": f"write to {EMAIL}"}, {"id": 1, "text": "today"}],
        "words": [{"word": EMAIL, "start": 0.5}],
        "logprobs": [{"token": "jane", "logprob": -0.1}],
        "language": "english",
        "duration": 1.5,
    }
    result = _result("application/json", orjson.dumps(answer))
    assert _redacting(transcript_texts(result)) == [
        "text",
        "segments[0].text",
        "segments[1].text",
    ]
    screened = orjson.loads(result.body)
    assert screened == {
        "text": "write to [REDACTED:email] today",
        "segments": [{"id": 0, "text": "write to [REDACTED:email]"}, {"id": 1, "text": "today"}],
        "language": "english",
        "duration": 1.5,
    }
    clean = orjson.dumps({"text": "hello", "words": [{"word": "hello"}]})
    untouched = _result("application/json", clean)
    _redacting(transcript_texts(untouched))
    assert untouched.body == clean


def test_a_find_split_across_transcript_segments_does_not_pass_in_them() -> None:
    card = "4111 1111 1111 1111"
    answer = {
        "text": f"my card is {card} thanks",
        "segments": [
            {"id": 0, "text": "my card is 4111 1111"},
            {"id": 1, "text": " 1111 1111 thanks"},
        ],
    }
    result = _result("application/json", orjson.dumps(answer))
    pii = Rule(GuardrailConfig.model_validate({**_rule("pii", "redact", "credit_card")}))
    assert AnswerGuard([pii]).transcript(result) == ("pii",)
    assert orjson.loads(result.body) == {"text": "my card is [REDACTED:credit_card] thanks"}


@pytest.mark.parametrize(
    "content_type", ["text/plain; charset=utf-8", "application/json", "text/vtt"]
)
def test_a_text_body_is_screened_whole_and_other_bytes_kept(content_type: str) -> None:
    body = b"1\n00:00:00,000 --> 00:00:01,000\n\xff mail " + EMAIL.encode() + b"\n"
    result = _result(content_type, body)  # not JSON under a JSON type: screened as text
    assert _redacting(transcript_texts(result)) == ["text"]
    assert result.body == body.replace(EMAIL.encode(), b"[REDACTED:email]")


def test_audio_is_no_text() -> None:
    assert _redacting(transcript_texts(_result("audio/mpeg", EMAIL.encode()))) == []


def test_a_blocked_transcript_is_withheld_naming_the_field_never_the_text() -> None:
    rules = [Rule(GuardrailConfig.model_validate({**SECRETS, "apply_to": ["response"]}))]
    seen: list[tuple[str, str]] = []
    guard = AnswerGuard(rules, lambda outcome, reason: seen.append((outcome, reason)))
    answer = {"text": "fine", "segments": [{"text": f"key {AWS_KEY}"}]}
    with pytest.raises(GuardrailBlockedError) as caught:
        guard.transcript(_result("application/json", orjson.dumps(answer)))
    error = caught.value
    assert error.message == (
        "The answer was withheld by the guardrail 'secrets' (detector: api_key) "
        "in `segments[0].text`."
    )
    assert (error.guardrail, error.code, error.param) == (
        "secrets",
        "content_policy_violation",
        None,
    )
    assert seen == [("answer_withheld", "guardrail:secrets:api_key")]
    redacting = AnswerGuard([Rule(GuardrailConfig.model_validate(PII))])
    result = _result("text/plain", f"hi {EMAIL}".encode())
    assert redacting.transcript(result) == ("pii",)
    assert result.body == b"hi [REDACTED:email]"
