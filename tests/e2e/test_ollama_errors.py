"""The `ollama` Python client against the edge's Ollama API when things go wrong: client keys
as `Authorization: Bearer`, Ollama's error (`{"error": "message"}`) with the status the edge's
taxonomy gives, fields named as the caller wrote them, a stream failing after its start, and
the model management the gateway refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import ollama
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client as client_config
from tests.router_service.auth.helpers import guarded_config

KEY = "sk-ollama-caller-0123456789"
LIMITED_KEY = "sk-ollama-limited-0123456789"
HI = [{"role": "user", "content": "hi"}]

Open = Callable[..., ollama.AsyncClient]


@pytest.fixture
async def edge_url(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> str:
    router = await start_router(
        guarded_config(
            fake.base_url,
            client_config("caller", KEY),
            client_config("one", LIMITED_KEY, rpm=1),
            server={"port": 0, "max_tokens_ceiling": 1000},
        )
    )
    return (await start_edge(router)).base_url


@pytest.fixture
async def open_client(edge_url: str) -> AsyncIterator[Open]:
    opened: list[ollama.AsyncClient] = []

    def open_(key: str = KEY) -> ollama.AsyncClient:
        opened.append(ollama.AsyncClient(host=edge_url, headers={"Authorization": f"Bearer {key}"}))
        return opened[-1]

    yield open_
    for client in opened:
        await client._client.aclose()


@pytest.fixture
async def http(edge_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=edge_url, timeout=10, headers=headers) as client:
        yield client


async def test_a_bad_key_and_an_unknown_model(open_client: Open) -> None:
    with pytest.raises(ollama.ResponseError) as refused:
        await open_client("sk-unknown").chat(model="chain", messages=HI)
    assert refused.value.status_code == 401 and refused.value.error
    with pytest.raises(ollama.ResponseError) as unlisted:
        await open_client("sk-unknown").list()
    assert unlisted.value.status_code == 401
    with pytest.raises(ollama.ResponseError) as unknown:
        async for _ in await open_client().chat(model="nope", messages=HI, stream=True):
            pass
    assert unknown.value.status_code == 404 and "nope" in unknown.value.error


async def test_bad_options_are_named_as_the_caller_wrote_them(open_client: Open) -> None:
    client = open_client()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"temperature": "hot"}, "options.temperature"),
        ({"num_predict": 1.5}, "options.num_predict"),
        ({"stop": [1]}, "options.stop[0]"),
        ({"top_k": 1.5}, "options.top_k"),
        ({"num_predict": 5000}, "options.num_predict"),  # the router's max_tokens ceiling
    ]
    for options, field in cases:
        with pytest.raises(ollama.ResponseError) as refused:
            await client.chat(model="chain", messages=HI, options=options)
        assert refused.value.status_code == 400, options
        assert field in refused.value.error, (options, refused.value.error)


async def test_what_the_gateway_cannot_do_is_refused_by_name(http: httpx.AsyncClient) -> None:
    cases = [
        ("/api/generate", {"model": "chain", "prompt": "def f(", "suffix": "return"}, "suffix"),
        ("/api/generate", {"model": "chain", "prompt": "x", "context": [1, 2]}, "context"),
        ("/api/chat", {"model": "chain", "messages": HI, "think": "max"}, "think"),
        ("/api/chat", {"model": "chain", "messages": HI, "format": "yaml"}, "format"),
        ("/api/chat", {"model": "chain", "messages": HI, "stream": "yes"}, "stream"),
        ("/api/embed", {"model": "embedder", "input": 3}, "input"),
        ("/api/chat", {"messages": HI}, "model"),
    ]
    for path, body, field in cases:
        answered = await http.post(path, json=body)
        assert answered.status_code == 400, body
        (message,) = answered.json().values()
        assert list(answered.json()) == ["error"] and field in message, (body, message)
    images = {"model": "chain", "messages": [{"role": "user", "content": "x", "images": ["?"]}]}
    answered = await http.post("/api/chat", json=images)
    assert answered.status_code == 400 and "messages[0].images[0]" in answered.json()["error"]


async def test_a_show_without_a_model_is_told_it_is_missing(http: httpx.AsyncClient) -> None:
    """`/api/show` names its model in `model` (or, from older clients, `name`): a body with
    neither is told the model is missing (was told it had sent a null)."""
    for body in ({}, {"verbose": True}, {"model": None, "name": None}):
        answered = await http.post("/api/show", json=body)
        assert answered.status_code == 400, body
        assert answered.json() == {"error": "Missing required parameter: 'model'."}, body
    shown = await http.post("/api/show", json={"name": "chain"})
    assert shown.status_code == 200 and shown.json()["model_info"]["general.basename"] == "chain"


async def test_a_rate_limit_is_429_with_retry_after(open_client: Open, edge_url: str) -> None:
    await open_client(LIMITED_KEY).chat(model="chain", messages=HI)
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as http:
        headers = {"authorization": f"Bearer {LIMITED_KEY}"}
        refused = await http.post(
            "/api/chat", json={"model": "chain", "messages": HI}, headers=headers
        )
    assert refused.status_code == 429 and set(refused.json()) == {"error"}
    assert int(refused.headers["retry-after"]) > 0


async def test_a_stream_failing_after_its_start_raises_in_the_client(
    open_client: Open, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=3))
    stream = await open_client().chat(
        model="chain", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
    )
    texts: list[str] = []
    with pytest.raises(ollama.ResponseError) as failed:
        async for part in stream:
            texts.append(part.message.content or "")
    assert texts and "".join(texts) != "Echo: a b c d e f"
    assert failed.value.error


async def test_model_management_and_unknown_paths_are_ollama_errors(
    open_client: Open, http: httpx.AsyncClient
) -> None:
    client = open_client()
    for call in (
        client.pull("llama3.2"),
        client.delete("chain"),
        client.copy("chain", "other"),
        client.create("mine", from_="chain"),
    ):
        with pytest.raises(ollama.ResponseError) as refused:
            await call
        assert (
            refused.value.status_code == 501 and "configured on the router" in refused.value.error
        )
    unknown = await http.get("/api/nothing")
    malformed = await http.post("/api/chat", content=b"{")
    assert (unknown.status_code, malformed.status_code) == (404, 400)
    assert set(unknown.json()) == set(malformed.json()) == {"error"}


async def test_a_blob_check_is_refused_as_the_upload_is(http: httpx.AsyncClient) -> None:
    """`ollama create` with files asks whether each blob is there (HEAD) before it uploads it
    (POST): both are the model management the gateway refuses (501), not a 405 whose Allow
    names the very method refused."""
    path = "/api/blobs/sha256:" + "0" * 64
    checked = await http.head(path)
    uploaded = await http.post(path, content=b"blob")
    assert (checked.status_code, checked.content) == (501, b"")
    assert uploaded.status_code == 501 and "configured on the router" in uploaded.json()["error"]


async def test_an_image_that_is_not_base64_is_refused_by_name(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """`images` are base64, which Ollama decodes and refuses when it cannot (`illegal base64
    data`): refused here, named, never sent on (it was, when it began as a PNG's would)."""
    bad = "iVBORw0KGgo!!not base64"
    chat = {"model": "chain", "messages": [{"role": "user", "content": "x", "images": [bad]}]}
    generate = {"model": "chain", "prompt": "x", "images": ["iVBORw0KGgo=", "iVBORw0KGgo€"]}
    for path, body, where in (
        ("/api/chat", chat, "messages[0].images[0]"),
        ("/api/generate", generate, "images[1]"),
    ):
        for stream in (False, True):
            answered = await http.post(path, json=body | {"stream": stream})
            assert answered.status_code == 400, answered.text
            assert where in answered.json()["error"], answered.text
    assert fake.state.count() == 0
