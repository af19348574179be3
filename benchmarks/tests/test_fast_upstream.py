"""The fast fake upstream speaks the OpenAI wire format the router's codec reads (no timing)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from clients import chat_completion_from_openai, chunk_from_openai
from router_service.fake_upstream._fast import DEFAULT_CHUNKS, create_fast_app

pytestmark = pytest.mark.timeout(10)


def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_fast_app())
    return httpx.AsyncClient(transport=transport, base_url="http://fast")


def _events(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


async def test_completion_is_read_by_the_codec() -> None:
    async with _client() as client:
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    completion = chat_completion_from_openai(response.json())
    assert completion.model == "m1"
    assert response.json()["usage"]["completion_tokens"] == DEFAULT_CHUNKS


@pytest.mark.parametrize(("chunks", "usage"), [(3, False), (0, True), (40, True)])
async def test_stream_has_role_content_finish_and_done(chunks: int, usage: bool) -> None:
    body: dict[str, object] = {"model": "m2", "messages": [], "stream": True}
    if usage:
        body["stream_options"] = {"include_usage": True}
    async with _client() as client:
        response = await client.post(f"/v1/chat/completions?chunks={chunks}", json=body)
    events = _events(response.text)
    assert response.headers["content-type"] == "text/event-stream"
    assert events[-1] == "[DONE]"
    parsed = [orjson.loads(e) for e in events[:-1]]
    assert len(parsed) == 1 + chunks + 1 + (1 if usage else 0)
    assert parsed[0]["choices"][0]["delta"]["role"] == "assistant"
    finish = parsed[chunks + 1]["choices"][0]["finish_reason"]
    assert finish == "stop"
    for event in parsed:
        chunk_from_openai(event)
    if usage:
        assert parsed[-1]["usage"]["completion_tokens"] == chunks


async def test_chunk_count_from_header_and_bounds() -> None:
    body = {"model": "m", "messages": [], "stream": True}
    async with _client() as client:
        two = await client.post("/v1/chat/completions", json=body, headers={"x-fake-chunks": "2"})
        bad = await client.post("/v1/chat/completions", json=body, headers={"x-fake-chunks": "x"})
    assert len(_events(two.text)) == 1 + 2 + 1 + 1
    assert len(_events(bad.text)) == 1 + DEFAULT_CHUNKS + 1 + 1


async def test_hold_model_ends_after_its_time() -> None:
    body = {"model": "hold-0", "messages": [], "stream": True}
    async with _client() as client:
        response = await client.post("/v1/chat/completions", json=body)
    events = _events(response.text)
    assert events[-1] == "[DONE]"
    assert len(events) == 1 + 1 + 1 + 1  # role, one content chunk, finish, [DONE]


async def test_embeddings_models_and_errors() -> None:
    async with _client() as client:
        emb = await client.post("/v1/embeddings", json={"model": "e", "input": ["a", "b", "c"]})
        one = await client.post("/v1/embeddings", json={"model": "e", "input": [1, 2, 3]})
        models = await client.get("/v1/models")
        missing = await client.get("/v1/nothing")
        broken = await client.post("/v1/chat/completions", content=b"{not json")
        no_input = await client.post("/v1/embeddings", json={"model": "e"})
    assert [d["index"] for d in emb.json()["data"]] == [0, 1, 2]
    assert len(one.json()["data"]) == 1
    assert models.json()["object"] == "list"
    assert missing.status_code == 404
    assert broken.status_code == 400
    assert "error" in broken.json()
    assert no_input.status_code == 400
