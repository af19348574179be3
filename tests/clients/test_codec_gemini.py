"""The Gemini API codec: a generateContent body's translation to the OpenAI dialect (and its
refusals), the answer as a GenerateContentResponse, a stream's chunks, embed bodies, statuses."""

from __future__ import annotations

from typing import Any

import pytest

from clients import InvalidRequestError, chat_completion_from_openai, chat_completion_to_openai
from clients.codec.gemini import (
    GEMINI_ONLY,
    ResponseChunks,
    camel_case,
    embeddings_body,
    embeddings_to_gemini,
    gemini_error,
    generate_request_from_gemini,
    include_thoughts,
    openai_chat_body,
    response_to_gemini,
)

PNG = "iVBORw0KGgo="
CALL = {"functionCall": {"name": "look", "args": {"q": 1}}, "thoughtSignature": "sig-1"}
BODY: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "Be "}, {"text": "terse."}]},
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Look:"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/cat.jpg"}},
            ],
        },
        {"role": "model", "parts": [{"text": "thinking…", "thought": True}, CALL, CALL]},
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "look", "response": {"seen": "a cat"}}},
                {"functionResponse": {"name": "look", "response": {"seen": "a dog"}}},
                {"text": "and?"},
            ],
        },
    ],
    "generationConfig": {
        "temperature": 0.2,
        "topK": 5,
        "maxOutputTokens": 50,
        "candidateCount": 2,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"name": {"type": "STRING", "nullable": True}},
            "propertyOrdering": ["name"],
        },
        "logprobs": 3,
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
}


def test_a_body_becomes_the_openai_chat_body() -> None:
    out = openai_chat_body("flash", BODY, False)
    system, user, model, result_1, result_2, follow = out["messages"]
    assert system == {"role": "system", "content": "Be terse."}
    assert user["content"] == [
        {"type": "text", "text": "Look:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}},
    ]
    # Thoughts are dropped; calls without an id get one, their results answer them in order.
    assert "content" not in model
    first, second = model["tool_calls"]
    assert (first["id"], second["id"]) == ("call_1_1", "call_1_2")
    assert first["function"] == {"name": "look", "arguments": '{"q":1}'}
    assert first["extra_content"] == {"google": {"thought_signature": "sig-1"}}
    assert result_1 == {"role": "tool", "tool_call_id": "call_1_1", "content": '{"seen":"a cat"}'}
    assert result_2["tool_call_id"] == "call_1_2"
    assert follow == {"role": "user", "content": "and?"}
    assert (out["temperature"], out["top_k"], out["max_tokens"], out["n"]) == (0.2, 5, 50, 2)
    assert (out["stop"], out["logprobs"], out["top_logprobs"]) == (["END"], True, 3)
    schema = out["response_format"]["json_schema"]["schema"]
    assert schema == {"type": "object", "properties": {"name": {"type": ["string", "null"]}}}
    assert "safetySettings" not in out and "stream" not in out  # for a Gemini deployment only:
    assert out[GEMINI_ONLY] == {"safetySettings": BODY["safetySettings"]}
    streamed = openai_chat_body("flash", BODY, True)
    assert streamed["stream_options"] == {"include_usage": True}
    params, stream = generate_request_from_gemini("flash", BODY, True)
    assert stream and params.model == "flash" and params.n == 2


def test_a_function_response_with_an_id_answers_that_call() -> None:
    call = {"functionCall": {"id": "c-9", "name": "look", "args": {}}}
    answer = {"functionResponse": {"id": "c-9", "name": "look", "response": {}}}
    body = {"contents": [{"role": "model", "parts": [call]}, {"parts": [answer]}]}
    assistant, tool = openai_chat_body("m", body, False)["messages"]
    assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"] == "c-9"


@pytest.mark.parametrize(
    ("config", "choice", "kept"),
    [
        ({"mode": "AUTO"}, "auto", ["a", "b", "c"]),
        ({"mode": "NONE"}, "none", ["a", "b", "c"]),
        ({"mode": "ANY"}, "required", ["a", "b", "c"]),
        (
            {"mode": "ANY", "allowedFunctionNames": ["b"]},
            {"type": "function", "function": {"name": "b"}},
            ["a", "b", "c"],
        ),
        ({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}, "required", ["a", "c"]),
    ],
)
def test_function_calling_config_is_tool_choice(config: Any, choice: Any, kept: Any) -> None:
    declarations = [{"name": n, "parametersJsonSchema": {"type": "object"}} for n in "abc"]
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": declarations}],
        "toolConfig": {"functionCallingConfig": config},
    }
    out = openai_chat_body("m", body, False)
    assert out["tool_choice"] == choice
    assert [tool["function"]["name"] for tool in out["tools"]] == kept


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"contents": [{"parts": [{"text": "x"}]}], "toolConfigs": {}}, "toolConfigs"),
        ({"contents": []}, "contents"),
        ({}, "contents"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"parts": [{"executableCode": {}}]}]}, "contents[0].parts[0]"),
        (
            {"contents": [{"parts": [{"fileData": {"fileUri": "files/abc"}}]}]},
            "contents[0].parts[0].fileData",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"speechConfig": {}}},
            "generationConfig.speechConfig",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"codeExecution": {}}]},
            "tools[0].codeExecution",
        ),
        ({"contents": [{"parts": [{"text": "x"}]}], "cachedContent": "c/1"}, "cachedContent"),
        (  # a FunctionResponsePart is media only: a text one would end up in its JSON's text
            {
                "contents": [
                    {
                        "parts": [
                            {
                                "functionResponse": {
                                    "name": "f",
                                    "response": {"ok": True},
                                    "parts": [{"text": "x"}],
                                }
                            }
                        ]
                    }
                ]
            },
            "contents[0].parts[0].functionResponse.parts[0]",
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"responseMimeType": "text/x-enum"},
            },
            "generationConfig.responseMimeType",
        ),
    ],
)
def test_what_the_gateway_cannot_say_is_refused_naming_its_path(
    body: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        openai_chat_body("m", body, False)
    assert refused.value.param == path


def completion(message: dict[str, Any], finish: str, usage: dict[str, Any]) -> dict[str, Any]:
    """A completion as the edge has it: through the proto and back."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
    return chat_completion_to_openai(chat_completion_from_openai(body))


def test_logprobs_are_gemini_s_logprobs_result() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi!"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [
                        {
                            "token": "Hi",
                            "logprob": -0.5,
                            "top_logprobs": [{"token": "Hi", "logprob": -0.5}],
                        },
                        {"token": "!", "logprob": -1.5, "top_logprobs": []},
                    ]
                },
            }
        ],
    }
    (candidate,) = response_to_gemini(chat_completion_to_openai(chat_completion_from_openai(body)))[
        "candidates"
    ]
    assert candidate["logprobsResult"] == {
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.5}]},
            {"candidates": []},
        ],
        "chosenCandidates": [
            {"token": "Hi", "logProbability": -0.5},
            {"token": "!", "logProbability": -1.5},
        ],
    }
    assert candidate["avgLogprobs"] == -1.0


def test_an_answer_is_a_generate_content_response() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"q":1}'}}
    call["extra_content"] = {"google": {"thought_signature": "sig-2"}}
    message = {"role": "assistant", "content": "Here.", "tool_calls": [call]}
    message["reasoning_content"] = "hmm"
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    answer = response_to_gemini(completion(message, "tool_calls", usage), thoughts=True)
    (candidate,) = answer["candidates"]
    assert candidate["content"] == {
        "role": "model",
        "parts": [
            {"text": "hmm", "thought": True},
            {"text": "Here."},
            {
                "functionCall": {"id": "c1", "name": "look", "args": {"q": 1}},
                "thoughtSignature": "sig-2",
            },
        ],
    }
    assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
    assert answer["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "totalTokenCount": 17,
        "cachedContentTokenCount": 4,
        "thoughtsTokenCount": 2,
    }
    assert (answer["modelVersion"], answer["responseId"]) == ("gpt-x", "chatcmpl-1")
    cut = response_to_gemini(completion({"role": "assistant", "content": "a"}, "length", usage))
    assert cut["candidates"][0]["finishReason"] == "MAX_TOKENS"
    withheld = completion({"role": "assistant", "content": ""}, "content_filter", usage)
    assert response_to_gemini(withheld)["candidates"][0]["finishReason"] == "SAFETY"


@pytest.mark.parametrize(
    ("config", "asked"),
    [
        ({"thinkingConfig": {"includeThoughts": True}}, True),
        ({"thinkingConfig": {"include_thoughts": True, "thinking_budget": 8}}, True),
        ({"thinkingConfig": {"includeThoughts": False, "thinkingBudget": 8}}, False),
        ({"thinkingConfig": {"thinkingBudget": 8}}, False),
        ({}, False),
    ],
)
def test_reasoning_is_thought_parts_only_when_include_thoughts(
    config: dict[str, Any], asked: bool
) -> None:
    assert include_thoughts(camel_case({"contents": [], "generationConfig": config})) is asked
    message = {"role": "assistant", "content": "Here.", "reasoning_content": "hmm"}
    answer = response_to_gemini(completion(message, "stop", {}), asked)
    thought = [{"text": "hmm", "thought": True}] if asked else []
    assert answer["candidates"][0]["content"]["parts"] == [*thought, {"text": "Here."}]
    stream = ResponseChunks("asked", asked)
    assert stream.chunk(chunk({"role": "assistant", "reasoning_content": "hm"})) == []
    sent = stream.chunk(chunk({"reasoning_content": "m"}))
    sent += stream.chunk(chunk({"content": "Here."}))
    parts = [
        p for r in [*sent, stream.finish()] for c in r["candidates"] for p in c["content"]["parts"]
    ]
    thoughts = [{"text": "hm", "thought": True}, {"text": "m", "thought": True}] if asked else []
    assert parts == [*thoughts, {"text": "Here."}]


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-2", "model": "gpt-x", "choices": [choice]}


def test_a_stream_holds_its_last_text_for_the_finish_and_sends_calls_whole() -> None:
    stream = ResponseChunks("asked")
    assert stream.chunk(chunk({"role": "assistant", "content": "He"})) == []
    (first,) = stream.chunk(chunk({"content": "llo"}))
    assert first["candidates"] == [
        {"content": {"role": "model", "parts": [{"text": "He"}]}, "index": 0}
    ]
    assert (first["modelVersion"], first["responseId"]) == ("gpt-x", "chatcmpl-2")
    pieces = [
        {"index": 0, "id": "c1", "function": {"name": "look", "arguments": '{"q"'}},
        {"index": 1, "id": "c2", "function": {"name": "see", "arguments": ""}},
    ]
    assert stream.chunk(chunk({"tool_calls": pieces})) == []
    assert (
        stream.chunk(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})) == []
    )
    assert stream.chunk(chunk({}, "tool_calls")) == []
    last = stream.finish({"prompt_tokens": 3, "completion_tokens": 4})
    (candidate,) = last["candidates"]
    assert candidate["content"]["parts"] == [
        {"text": "llo"},
        {"functionCall": {"id": "c1", "name": "look", "args": {"q": 1}}},
        {"functionCall": {"id": "c2", "name": "see", "args": {}}},
    ]
    assert candidate["finishReason"] == "STOP"
    assert last["usageMetadata"]["totalTokenCount"] == 7
    assert stream.pending() == []


def test_a_failing_stream_gives_what_it_held_before_the_error() -> None:
    stream = ResponseChunks("asked")
    stream.chunk(chunk({"content": "a"}))
    stream.chunk(chunk({"content": "b", "role": "assistant"}, index=1))
    (held,) = stream.pending()
    assert held["candidates"][0]["index"] == 1
    assert gemini_error(503, "down") == {
        "error": {"code": 503, "message": "down", "status": "UNAVAILABLE"}
    }
    assert gemini_error(413, "big")["error"]["status"] == "INVALID_ARGUMENT"
    assert gemini_error(500, "bug")["error"]["status"] == "INTERNAL"


def test_embed_bodies_and_answers() -> None:
    one = {"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "taskType": "RETRIEVAL_QUERY"}
    hints = {"taskType": "RETRIEVAL_QUERY"}  # for Google's deployments alone
    assert embeddings_body("e", one, False) == {"model": "e", "input": "a b", "gemini_only": hints}
    requests = [
        {"model": "models/e", "content": {"parts": [{"text": t}]}, "outputDimensionality": 4}
        for t in ("x", "y")
    ]
    assert embeddings_body("e", {"requests": requests}, True) == {
        "model": "e",
        "input": ["x", "y"],
        "dimensions": 4,
    }
    other = [{**requests[0], "model": "models/f"}]
    with pytest.raises(InvalidRequestError) as refused:
        embeddings_body("e", {"requests": other}, True)
    assert refused.value.param == "requests[0].model"
    data = {"data": [{"index": 1, "embedding": [0.5]}, {"index": 0, "embedding": [0.25]}]}
    assert embeddings_to_gemini(data, True) == {
        "embeddings": [{"values": [0.25]}, {"values": [0.5]}]
    }
    assert embeddings_to_gemini(data, False) == {"embedding": {"values": [0.25]}}
