"""Gemini API ⇄ OpenAI dialect: roles, function calling, generation config, safety blocks."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _gemini_answer as GA
from router_service.providers import _gemini_map as G

CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":1}'}}


def test_roles_system_instruction_and_function_responses() -> None:
    out = G.request_body(
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "find it"},
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"found": true}'},
                {"role": "tool", "tool_call_id": "unknown", "content": "plain text"},
            ]
        }
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "find it"}]},
        {
            "role": "model",
            # A call Gemini did not sign (CALL comes from elsewhere) gets the documented stand-in.
            "parts": [
                {
                    "functionCall": {"id": "call_1", "name": "lookup", "args": {"q": 1}},
                    "thoughtSignature": "skip_thought_signature_validator",
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                # The function is named from the assistant's call with that id, which it carries
                # (Gemini 3 matches by id); a JSON object result is the response itself, anything
                # else is wrapped. A result for no call of the history has no id to match.
                {
                    "functionResponse": {
                        "id": "call_1",
                        "name": "lookup",
                        "response": {"found": True},
                    }
                },
                {"functionResponse": {"name": "unknown", "response": {"result": "plain text"}}},
            ],
        },
    ]


def test_thought_signatures_go_out_with_the_calls_and_come_back_with_them() -> None:
    """Gemini 3 signs its function calls and refuses (400) the next turn if the first call of
    the turn comes back without its signature."""
    signed: dict[str, Any] = {
        "functionCall": {"name": "lookup", "args": {"q": 1}},
        "thoughtSignature": "c2lnMQ==",
    }
    unsigned: dict[str, Any] = {"functionCall": {"name": "fetch", "args": {}}}
    data = {"candidates": [{"content": {"role": "model", "parts": [signed, unsigned]}}]}
    message = GA.completion(data, "gemini-3-pro", 0)["choices"][0]["message"]
    first, second = message["tool_calls"]
    assert first["extra_content"] == {"google": {"thought_signature": "c2lnMQ=="}}
    assert "extra_content" not in second

    streamed = GA.StreamMapper("gemini-3-pro", 0).feed(data)
    assert (
        streamed[0]["choices"][0]["delta"]["tool_calls"][0]["extra_content"]
        == (first["extra_content"])
    )

    history = [{"role": "user", "content": "go"}, message, {"role": "user", "content": "and?"}]
    contents = G.request_body({"messages": history})["contents"]
    ids = [call["id"] for call in message["tool_calls"]]
    assert contents[1]["parts"] == [
        {**signed, "functionCall": {"id": ids[0], **signed["functionCall"]}},
        {"functionCall": {"id": ids[1], **unsigned["functionCall"]}},
    ]


def test_gemini_call_ids_come_back_with_the_call_and_its_result() -> None:
    """Gemini 3 gives its calls ids and matches each functionResponse to its call by id: both go
    back as they came, so two calls of one function keep their results apart."""
    calls = [
        {"functionCall": {"id": f"fc-{n}", "name": "lookup", "args": {"q": n}}} for n in (1, 2)
    ]
    data = {"candidates": [{"content": {"role": "model", "parts": calls}}]}
    message = GA.completion(data, "gemini-3-pro", 0)["choices"][0]["message"]
    assert [call["id"] for call in message["tool_calls"]] == ["fc-1", "fc-2"]
    results = [
        {"role": "tool", "tool_call_id": f"fc-{n}", "content": f"result {n}"} for n in (2, 1)
    ]
    contents = G.request_body({"messages": [{"role": "user", "content": "go"}, message, *results]})[
        "contents"
    ]
    assert [part["functionCall"]["id"] for part in contents[1]["parts"]] == ["fc-1", "fc-2"]
    assert [part["functionResponse"] for part in contents[2]["parts"]] == [
        {"id": "fc-2", "name": "lookup", "response": {"result": "result 2"}},
        {"id": "fc-1", "name": "lookup", "response": {"result": "result 1"}},
    ]


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "see"}, *parts]}]}


def test_files_and_audio_become_inline_data_and_file_data() -> None:
    out = G.request_body(
        _user(
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}},
            {"type": "file", "file": {"file_id": "https://x.test/r.pdf", "filename": "r.pdf"}},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
            {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
            {"type": "input_audio", "input_audio": {"data": "ZkxhQw", "format": "flac"}},
        )
    )
    assert out["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
        {"inlineData": {"mimeType": "text/csv", "data": "YSxi"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x.test/r.pdf"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
        {"inlineData": {"mimeType": "audio/flac", "data": "ZkxhQw"}},
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "file", "file": {"file_id": "file-abc123"}}, ".file.file_id"),
        (
            {"type": "input_audio", "input_audio": {"data": "x", "format": "m4a"}},
            ".input_audio.format",
        ),
        ({"type": "input_video", "input_video": {}}, ""),
    ],
    ids=["openai_file_id", "audio_format", "unknown_kind"],
)
def test_what_gemini_cannot_take_is_unsupported_input(part: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        G.request_body(_user(part))
    assert (caught.value.outcome, caught.value.upstream_status) == (Outcome.UNSUPPORTED_INPUT, 0)
    assert caught.value.upstream_error is not None
    assert caught.value.upstream_error["param"] == f"messages[0].content[1]{param}"


def test_generation_config_tools_and_passthrough() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = G.request_body(
        {
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.5,
            "top_p": 0.9,
            "n": 2,
            "seed": 7,
            "max_completion_tokens": 64,
            "stop": "STOP",
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": schema},
            },
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "safetySettings": [
                {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}
            ],
            "generationConfig": {"topK": 3},
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.5,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "maxOutputTokens": 64,
        "stopSequences": ["STOP"],
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "topK": 3,
    }
    assert out["tools"] == [
        {"functionDeclarations": [{"name": "f", "parametersJsonSchema": schema}]}
    ]
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}
    }
    assert out["safetySettings"][0]["threshold"] == "BLOCK_NONE"


def test_top_k_goes_into_the_generation_config() -> None:
    # Gemini refuses an unknown top-level field; `top_k` is where OpenAI clients put it.
    out = G.request_body({"messages": [{"role": "user", "content": "x"}], "top_k": 40})
    assert "top_k" not in out
    assert out["generationConfig"] == {"topK": 40}


@pytest.mark.parametrize(
    ("effort", "budget"), [("none", 0), ("low", 1024), ("medium", 8192), ("high", 24576)]
)
def test_reasoning_effort_is_a_thinking_budget(effort: str, budget: int) -> None:
    messages = [{"role": "user", "content": "x"}]
    out = G.request_body({"messages": messages, "reasoning_effort": effort})
    assert "reasoning_effort" not in out
    thoughts = {"includeThoughts": True} if budget else {}
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingBudget": budget, **thoughts}}
    # The caller's own thinkingConfig refines it.
    own = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 5}}
    out = G.request_body(
        {"messages": messages, "reasoning_effort": effort, "generationConfig": own}
    )
    assert out["generationConfig"] == own


def test_tool_use_prompt_tokens_are_prompt_tokens() -> None:
    raw = {"promptTokenCount": 100, "candidatesTokenCount": 10, "toolUsePromptTokenCount": 50}
    counted = GA.usage(raw | {"totalTokenCount": 160})
    assert (counted["prompt_tokens"], counted["completion_tokens"]) == (150, 10)
    assert counted["total_tokens"] == 160


@pytest.mark.parametrize("reason", ["IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"])
def test_image_policy_finishes_are_content_filters(reason: str) -> None:
    assert GA.finish_reason(reason, False) == "content_filter"


def _candidate(parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0) -> Any:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def test_completion_with_function_calls_thoughts_and_usage() -> None:
    data = {
        "responseId": "r1",
        "modelVersion": "gemini-x-001",
        "candidates": [
            _candidate(
                [
                    {"text": "thinking…", "thought": True},
                    {"functionCall": {"name": "f", "args": {"a": 1}}},
                    {"functionCall": {"name": "g", "args": {}, "id": "given"}},
                ]
            ),
            _candidate([{"text": "other"}], "MAX_TOKENS", 1),
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 2,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 17,
        },
    }
    out = GA.completion(data, "fallback", 1)
    first, second = out["choices"]
    assert (out["id"], out["model"]) == ("r1", "gemini-x-001")
    assert first["message"]["content"] is None
    calls = first["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("call_r1_0_0", "f", '{"a":1}'),
        ("given", "g", "{}"),
    ]
    assert first["finish_reason"] == "tool_calls"
    assert (second["index"], second["message"]["content"], second["finish_reason"]) == (
        1,
        "other",
        "length",
    )
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


@pytest.mark.parametrize(
    "data",
    [
        {"promptFeedback": {"blockReason": "SAFETY"}},
        {"candidates": [_candidate([], "SAFETY")]},
        {"candidates": [{"finishReason": "PROHIBITED_CONTENT", "index": 0}]},
    ],
    ids=["prompt_blocked", "answer_blocked", "no_content"],
)
def test_safety_blocks_are_content_filtered(data: dict[str, Any]) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        GA.completion(data, "m", 1)
    assert caught.value.outcome is Outcome.CONTENT_FILTERED
    assert caught.value.upstream_error is not None


def test_a_block_after_some_content_is_a_content_filter_finish() -> None:
    out = GA.completion({"candidates": [_candidate([{"text": "partial"}], "SAFETY")]}, "m", 1)
    assert out["choices"][0]["finish_reason"] == "content_filter"


def test_stream_mapper() -> None:
    mapper = GA.StreamMapper("m", 1)
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    first = mapper.feed({"responseId": "r", "candidates": [_candidate([{"text": "He"}], None)]})
    call = mapper.feed({"candidates": [_candidate([{"functionCall": {"name": "f"}}], None)]})
    last = mapper.feed(
        {"candidates": [_candidate([{"functionCall": {"name": "g"}}])], "usageMetadata": usage}
    )

    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": "He"}
    assert call[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert last[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
    assert last[0]["choices"][0]["finish_reason"] == "tool_calls"
    assert last[1]["choices"] == [] and last[1]["usage"]["total_tokens"] == 5
    assert {c["id"] for c in first + call + last} == {"r"}


def test_stream_blocked_before_any_content_is_content_filtered() -> None:
    mapper = GA.StreamMapper("m", 1)
    with pytest.raises(UpstreamFailure) as caught:
        mapper.feed({"candidates": [_candidate([], "SAFETY")]})
    assert caught.value.outcome is Outcome.CONTENT_FILTERED
