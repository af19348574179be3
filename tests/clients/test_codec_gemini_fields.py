"""The Gemini codec's errors in the caller's own names: what the shared OpenAI checks refuse is
said of the generateContent field it came from; `topK`'s own check; thinkingConfig; a stream
chunk's logprobs."""

from __future__ import annotations

from typing import Any

import pytest

from clients import InvalidRequestError
from clients.codec.gemini import (
    ResponseChunks,
    camel_case,
    gemini_field,
    gemini_message,
    generate_request_from_gemini,
    openai_chat_body,
)

HELLO: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def refusal(body: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as refused:
        generate_request_from_gemini("flash", body, False)
    return refused.value


@pytest.mark.parametrize(
    ("field", "value", "openai"),
    [
        ("temperature", "hot", "temperature"),
        ("topP", [1], "top_p"),
        ("candidateCount", "2", "n"),
        ("seed", 1.5, "seed"),
        ("presencePenalty", {}, "presence_penalty"),
        ("frequencyPenalty", True, "frequency_penalty"),
        ("responseLogprobs", "yes", "logprobs"),
        ("logprobs", "3", "top_logprobs"),
    ],
)
def test_a_generation_config_value_the_openai_checks_refuse_is_named_as_sent(
    field: str, value: Any, openai: str
) -> None:
    refused = refusal({**HELLO, "generationConfig": {field: value}})
    where = f"generationConfig.{field}"
    assert refused.param == where
    assert f"'{where}'" in refused.message and f"'{openai}'" not in refused.message


@pytest.mark.parametrize("top_k", ["40", 2.5, True, 0, -3, 2**40])
def test_top_k_is_an_integer_of_at_least_one(top_k: Any) -> None:
    refused = refusal({**HELLO, "generationConfig": {"topK": top_k}})
    assert refused.param == "generationConfig.topK"
    assert "generationConfig.topK" in refused.message


def test_a_valid_top_k_rides_as_top_k() -> None:
    params, _ = generate_request_from_gemini(
        "flash", {**HELLO, "generationConfig": {"topK": 4}}, False
    )
    assert '"top_k":4' in params.extra_json


def test_a_message_is_its_turn_and_a_tool_its_declaration() -> None:
    answer = {"functionResponse": {"name": "f", "response": {"x": 1}}}
    body: dict[str, Any] = {
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f"}}] * 2},
            {"role": "user", "parts": [answer, answer, {"text": "b"}]},
        ],
        "tools": [
            {"functionDeclarations": [{"name": "f"}, {"name": "g"}]},
            {"functionDeclarations": [{"name": "h"}]},
        ],
    }
    # system, user, model, tool, tool, user: OpenAI's messages, from four places.
    where = [gemini_field(f"messages[{i}].content", body) for i in range(6)]
    assert where == ["systemInstruction", "contents[0]", "contents[1]", *["contents[2]"] * 3]
    assert gemini_field("messages", body) == "contents"
    assert gemini_field("tools[1].function.name", body) == "tools[0].functionDeclarations[1].name"
    assert gemini_field("tools[2].function", body) == "tools[1].functionDeclarations[0]"
    # `ANY` with several allowed names keeps those tools alone.
    calling = {"mode": "ANY", "allowedFunctionNames": ["h", "g"]}
    kept = {**body, "toolConfig": {"functionCallingConfig": calling}}
    assert gemini_field("tools[0].function.name", kept) == "tools[0].functionDeclarations[1].name"
    assert gemini_field("tools[1]", kept) == "tools[1].functionDeclarations[0]"
    assert gemini_field("n", body) == "generationConfig.candidateCount"
    assert gemini_field("max_tokens", body) == "generationConfig.maxOutputTokens"
    assert gemini_field("stop[1]", body) == "generationConfig.stopSequences[1]"
    schema = "generationConfig.responseMimeType"
    assert gemini_field("response_format.json_schema.schema", body) == schema
    assert gemini_field("generationConfig.maxOutputTokens", body) is None
    assert gemini_field(None, body) is None


def test_a_message_names_the_field_where_it_named_the_param() -> None:
    field = "generationConfig.candidateCount"
    said = gemini_message("Invalid value for 'n': 9. It must be between 1 and 8.", "n", field)
    assert said == f"Invalid value for '{field}': 9. It must be between 1 and 8."
    said = gemini_message("`messages` must contain at least one message.", "messages", "contents")
    assert said == "`contents` must contain at least one message."
    assert gemini_message("Too many.", "n", field) == f"{field}: Too many."


def test_a_stream_chunk_carries_its_tokens_logprobs() -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.5, "top_logprobs": []}]}
    stream = ResponseChunks("flash")
    first = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": logprobs}]}
    second = {"choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": None}]}
    assert stream.chunk(first) == []  # held until the next
    (sent,) = stream.chunk(second)
    (candidate,) = sent["candidates"]
    assert candidate["logprobsResult"]["chosenCandidates"] == [
        {"token": "Hi", "logProbability": -0.5}
    ]
    assert candidate["avgLogprobs"] == -0.5
    (held,) = stream.pending()[0]["candidates"]
    assert "logprobsResult" not in held


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"thinkingBudget": 0}, "none"),
        ({"thinkingBudget": 8, "includeThoughts": True}, "low"),
        ({"thinking_budget": 1024, "include_thoughts": True}, "low"),
        ({"thinkingBudget": 1025}, "medium"),
        ({"thinkingBudget": 100_000}, "high"),
        ({"thinkingLevel": "MINIMAL"}, "minimal"),
        ({"thinkingLevel": "HIGH"}, "high"),
        ({"thinkingBudget": -1}, None),
        ({"includeThoughts": False}, None),
    ],
)
def test_a_thinking_config_is_a_reasoning_effort(thinking: Any, effort: str | None) -> None:
    body = camel_case({**HELLO, "generationConfig": {"thinkingConfig": thinking}})
    out = openai_chat_body("flash", body, False)
    assert out.get("reasoning_effort") == effort
    assert "reasoning" not in out


@pytest.mark.parametrize(
    "thinking",
    [
        {"includeThoughts": True},
        {"include_thoughts": True, "thinking_budget": -1},
        {"includeThoughts": True, "thinkingLevel": "THINKING_LEVEL_UNSPECIFIED"},
    ],
)
def test_include_thoughts_alone_asks_for_reasoning_at_the_default(thinking: Any) -> None:
    body = camel_case({**HELLO, "generationConfig": {"thinkingConfig": thinking}})
    out = openai_chat_body("flash", body, False)
    assert out["reasoning"] == {"enabled": True} and "reasoning_effort" not in out


@pytest.mark.parametrize(
    ("thinking", "field"),
    [
        ({"thinkingBudget": "8"}, "generationConfig.thinkingConfig.thinkingBudget"),
        ({"thinkingBudget": -2}, "generationConfig.thinkingConfig.thinkingBudget"),
        ({"thinkingLevel": "DEEP"}, "generationConfig.thinkingConfig.thinkingLevel"),
        ({"includeThoughts": "yes"}, "generationConfig.thinkingConfig.includeThoughts"),
        ({"thinkingBudget": 8, "thinkingLevel": "LOW"}, "generationConfig.thinkingConfig"),
        ({"odd": 1}, "generationConfig.thinkingConfig.odd"),
        ([], "generationConfig.thinkingConfig"),
    ],
)
def test_a_wrong_thinking_config_is_refused_naming_its_field(thinking: Any, field: str) -> None:
    refused = refusal({**HELLO, "generationConfig": {"thinkingConfig": thinking}})
    assert refused.param == field and field in refused.message
