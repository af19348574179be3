"""A Gemini caller's refused values, said of the Gemini fields it sent: the router's bounds
(`server.max_n`, `server.max_tokens_ceiling`), its chat check, and the codec's type checks
(sent raw, where google-genai would refuse the type before sending)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.conftest import open_client
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_gemini_sdk import config

HELLO: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
HEADERS = {"x-goog-api-key": "sk-caller"}
MAX_N, CEILING = 2, 100


@pytest.fixture
async def http(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[httpx.AsyncClient]:
    server = {"port": 0, "max_n": MAX_N, "max_tokens_ceiling": CEILING}
    edge = await start_edge(await start_router(config(fake, server=server)))
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def gemini(http: httpx.AsyncClient) -> genai.Client:
    return open_client(str(http.base_url), http)


def refused_message(answer: httpx.Response) -> str:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    return str(error["message"])


@pytest.mark.parametrize("model", ["chain", "flash"])
@pytest.mark.parametrize(
    ("generation", "field"),
    [
        ({"candidate_count": MAX_N + 1}, "generationConfig.candidateCount"),
        ({"max_output_tokens": CEILING + 1}, "generationConfig.maxOutputTokens"),
        ({"logprobs": 21}, "generationConfig.logprobs"),
    ],
)
async def test_a_value_over_the_routers_bound_names_the_gemini_field(
    gemini: genai.Client, model: str, generation: dict[str, Any], field: str
) -> None:
    settings = types.GenerateContentConfig(**generation)
    with pytest.raises(errors.ClientError) as refused:
        await gemini.aio.models.generate_content(model=model, contents="hi", config=settings)
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert f"'{field}'" in str(refused.value.message)
    assert "top_logprobs" not in str(refused.value.message)  # no OpenAI name it never sent
    with pytest.raises(errors.ClientError) as refused_stream:
        stream = await gemini.aio.models.generate_content_stream(
            model=model, contents="hi", config=settings
        )
        async for _ in stream:
            pass
    assert f"'{field}'" in str(refused_stream.value.message)


async def test_contents_without_a_part_are_refused_as_contents(http: httpx.AsyncClient) -> None:
    body = {"contents": [{"role": "user", "parts": []}]}
    path = "/v1beta/models/chain:generateContent"
    message = refused_message(await http.post(path, json=body, headers=HEADERS))
    assert "`contents`" in message and "messages" not in message


@pytest.mark.parametrize(
    ("generation", "field"),
    [
        ({"temperature": "hot"}, "generationConfig.temperature"),
        ({"candidateCount": 1.5}, "generationConfig.candidateCount"),
        ({"topK": "40"}, "generationConfig.topK"),
        ({"topK": 2.5}, "generationConfig.topK"),
        ({"topK": 0}, "generationConfig.topK"),
    ],
)
async def test_a_wrong_type_names_the_gemini_field(
    http: httpx.AsyncClient, generation: dict[str, Any], field: str
) -> None:
    body = {**HELLO, "generationConfig": generation}
    for method in ("generateContent", "streamGenerateContent?alt=sse", "countTokens"):
        path = f"/v1beta/models/flash:{method}"
        sent = body if method != "countTokens" else {"generateContentRequest": body}
        message = refused_message(await http.post(path, json=sent, headers=HEADERS))
        assert field in message, message


async def test_every_streamed_chunk_carries_its_tokens_logprobs(gemini: genai.Client) -> None:
    """The last text of a stream too: it leaves with the finishReason and the usage."""
    settings = types.GenerateContentConfig(response_logprobs=True, logprobs=1)
    stream = await gemini.aio.models.generate_content_stream(
        model="chain", contents="one two", config=settings
    )
    chunks = [chunk async for chunk in stream]
    texts, tokens = [], []
    for chunk in chunks:
        if not chunk.text:
            continue
        (candidate,) = chunk.candidates or []
        assert candidate.logprobs_result is not None, chunk
        chosen = [c.token or "" for c in candidate.logprobs_result.chosen_candidates or ()]
        assert "".join(chosen) == chunk.text
        texts.append(chunk.text)
        tokens += chosen
    assert "".join(texts) == "Echo: one two" == "".join(tokens)
    (last,) = chunks[-1].candidates or []
    assert chunks[-1].text and last.finish_reason == types.FinishReason.STOP


async def test_text_response_modalities_are_answered(gemini: genai.Client) -> None:
    """google-genai sends `response_modalities` as generationConfig.responseModalities: text is
    what every deployment answers; a modality no chat answer carries is refused, named."""
    text = types.GenerateContentConfig(response_modalities=["TEXT"])
    response = await gemini.aio.models.generate_content(model="chain", contents="hi", config=text)
    assert response.text == "Echo: hi"
    image = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    with pytest.raises(errors.ClientError) as refused:
        await gemini.aio.models.generate_content(model="chain", contents="hi", config=image)
    assert refused.value.code == 400
    assert "generationConfig.responseModalities[1]" in str(refused.value.message)
