"""The fake refuses content its provider does not take, with that provider's 400, and takes
what its provider documents (documents, audio): a mapping that sends a shape the provider does
not know fails against the fake as it would against the real API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream

PDF = "JVBERi0xLjQ="
ANTHROPIC = ("/v1/messages", {"x-api-key": "k", "anthropic-version": "2023-06-01"})
GEMINI = ("/v1beta/models/g:generateContent", {"x-goog-api-key": "k"})
COHERE = ("/v2/chat", {"authorization": "Bearer k"})
OPENAI = ("/v1/chat/completions", {"authorization": "Bearer k"})


def anthropic(*blocks: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "text", "text": "read"}, *blocks]
    return {"model": "c", "max_tokens": 9, "messages": [{"role": "user", "content": content}]}


def gemini(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "read"}, *parts]}]}


def chat(*parts: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "text", "text": "read"}, *parts]
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


PDF_SOURCE = {"type": "base64", "media_type": "application/pdf", "data": PDF}
TEXT_SOURCE = {"type": "text", "media_type": "text/plain", "data": "words"}
PNG_AS_DOCUMENT = {"type": "base64", "media_type": "image/png", "data": PDF}
URL = "https://x.test/a.pdf"
WAV = {"data": "UklG", "format": "wav"}

TAKEN = [
    (ANTHROPIC, anthropic({"type": "document", "source": PDF_SOURCE})),
    (ANTHROPIC, anthropic({"type": "document", "source": {"type": "url", "url": URL}})),
    (ANTHROPIC, anthropic({"type": "document", "source": TEXT_SOURCE})),
    (GEMINI, gemini({"inlineData": {"mimeType": "application/pdf", "data": PDF}})),
    (GEMINI, gemini({"inlineData": {"mimeType": "audio/wav", "data": "UklG"}})),
    (GEMINI, gemini({"fileData": {"mimeType": "application/pdf", "fileUri": URL}})),
    (OPENAI, chat({"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}})),
    (OPENAI, chat({"type": "input_audio", "input_audio": WAV})),
    (OPENAI, {**chat(), "logprobs": True, "top_logprobs": 2}),
    (COHERE, chat({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}})),
]
REFUSED = [
    (ANTHROPIC, anthropic({"type": "input_audio", "input_audio": WAV}), "messages.0.content.1"),
    (ANTHROPIC, anthropic({"type": "document", "source": PNG_AS_DOCUMENT}), "application/pdf"),
    (GEMINI, gemini({"inlineData": {"mimeType": "audio/x-m4a", "data": "AA"}}), "MIME type"),
    (GEMINI, gemini({"file": {"file_data": PDF}}), 'Unknown name "file"'),
    (OPENAI, chat({"type": "input_audio", "input_audio": {**WAV, "format": "flac"}}), "'wav'"),
    (OPENAI, chat({"type": "document", "document": {}}), "Invalid value: 'document'"),
    (COHERE, chat({"type": "file", "file": {"file_data": PDF}}), "unknown type 'file'"),
    (OPENAI, {**chat(), "tools": []}, "Invalid 'tools': empty array"),  # the Responses API takes it
    (OPENAI, {**chat(), "top_logprobs": 2}, "'logprobs' must be true"),
    (OPENAI, {**chat(), "tool_choice": "auto"}, "'tool_choice' is only allowed when 'tools'"),
    (OPENAI, {**chat(), "parallel_tool_calls": False}, "only allowed when 'tools' are specified"),
]


@pytest.mark.parametrize(("route", "body"), TAKEN)
async def test_documented_content_is_taken(
    http: httpx.AsyncClient, route: tuple[str, dict[str, str]], body: dict[str, Any]
) -> None:
    path, headers = route
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("route", "body", "words"), REFUSED)
async def test_other_content_is_the_providers_400(
    http: httpx.AsyncClient, route: tuple[str, dict[str, str]], body: dict[str, Any], words: str
) -> None:
    path, headers = route
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code == 400
    error = response.json().get("error") or response.json()
    assert words in error["message"]


# Wrong-shaped values where a name or an object goes (a list is no key of a set, a list has no
# `.get`): the provider's 400, as the real API answers, not the fake's 500.
WRONG_SHAPES = [
    (OPENAI, chat({"type": []})),
    (OPENAI, chat({"type": "input_audio", "input_audio": {**WAV, "format": ["wav"]}})),
    (ANTHROPIC, anthropic({"type": {}})),
    (ANTHROPIC, anthropic({"type": "tool_result", "tool_use_id": "t", "content": [{"type": []}]})),
    (GEMINI, gemini({"inlineData": ["application/pdf", PDF]})),
    (GEMINI, gemini({"fileData": [URL]})),
    (GEMINI, {**gemini(), "generationConfig": ["stop"]}),
    (COHERE, chat({"type": ["text"]})),
]


@pytest.mark.parametrize(("route", "body"), WRONG_SHAPES)
async def test_content_of_the_wrong_shape_is_the_providers_400(
    http: httpx.AsyncClient, route: tuple[str, dict[str, str]], body: dict[str, Any]
) -> None:
    path, headers = route
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text[:300]


@pytest.mark.parametrize(
    ("model", "ids", "refused"),
    [
        ("mistral-small-latest", ("call_abc123", "call_abc123"), "call_abc123"),
        ("open-mixtral-8x22b", ("aB3xK9mP2", "toolu_1"), "toolu_1"),
        ("mistral-small-latest", ("aB3xK9mP2", "aB3xK9mP2"), None),
        ("gpt-4.1", ("call_abc123", "call_abc123"), None),  # not Mistral's: any id
    ],
)
async def test_a_mistral_model_takes_tool_call_ids_of_9_letters_and_digits(
    http: httpx.AsyncClient, model: str, ids: tuple[str, str], refused: str | None
) -> None:
    call = {"id": ids[0], "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": ids[1], "content": "ok"},
    ]
    path, headers = OPENAI
    answer = await http.post(path, headers=headers, json={"model": model, "messages": messages})
    if refused is None:
        assert answer.status_code == 200
    else:
        assert answer.status_code == 400
        said = f"Tool call id was {refused} but must be a-z, A-Z, 0-9, with a length of 9."
        assert answer.json()["error"]["message"] == said
