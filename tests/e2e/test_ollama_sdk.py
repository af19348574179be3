"""The `ollama` Python client → the edge's Ollama API (`/api/…`) → the router → the fake
upstream (an OpenAI-kind deployment): chat and generate, streamed and not, tools, thinking,
structured output, images, embeddings, and the model list."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
import orjson
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = base_config(fake.base_url)
    config["models"]["embedder"]["embeddings"] = True
    return await start_router(config)


@pytest.fixture
async def edge_url(router: RouterHandle, start_edge: StartEdge) -> str:
    return (await start_edge(router)).base_url


@pytest.fixture
async def client(edge_url: str) -> AsyncIterator[ollama.AsyncClient]:
    client = ollama.AsyncClient(host=edge_url, headers={"Authorization": "Bearer sk-caller"})
    yield client
    await client._client.aclose()


def sent(fake: FakeUpstream) -> dict[str, Any]:
    request = fake.state.last()
    assert request is not None
    return dict(request.body)


async def test_created_at_is_read_from_the_edges_clock(
    router: RouterHandle, start_edge: StartEdge
) -> None:
    """`created_at` is a time the edge writes: on its clock, as a Responses answer's."""
    edge = await start_edge(router, clock=ManualClock(start=1_234_567_890.0))
    client = ollama.AsyncClient(host=edge.base_url, headers={"Authorization": "Bearer sk-caller"})
    try:
        hi: Any = [{"role": "user", "content": "hi"}]
        answer = await client.chat(model="chain", messages=hi)
        loaded = await client.generate(model="chain")  # Ollama's "load the model"
        streamed = [
            part async for part in await client.chat(model="chain", messages=hi, stream=True)
        ]
    finally:
        await client._client.aclose()
    at = "2009-02-13T23:31:30"
    assert answer.created_at and answer.created_at.startswith(at)
    assert loaded.created_at and loaded.created_at.startswith(at)
    assert {(part.created_at or "")[: len(at)] for part in streamed} == {at}


async def test_a_chat_with_options(client: ollama.AsyncClient, fake: FakeUpstream) -> None:
    options = {"temperature": 0.5, "num_predict": 64, "top_k": 5, "seed": 7, "stop": ["END"]}
    answer = await client.chat(
        model="chain",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        options=options | {"num_ctx": 4096, "num_gpu": 1},  # a local runner's: ignored
        keep_alive="5m",
    )
    assert answer.message.role == "assistant" and answer.message.content == "Echo: hi"
    assert (answer.model, answer.done, answer.done_reason) == ("chain", True, "stop")
    assert answer.prompt_eval_count and answer.eval_count
    assert answer.total_duration and answer.total_duration > 0 and answer.load_duration == 0
    assert answer.created_at and answer.created_at.endswith("Z")
    body = sent(fake)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.5, 64, 7)
    assert (body["top_k"], body["stop"]) == (5, ["END"])
    assert "num_ctx" not in body and "num_gpu" not in body


async def test_a_streamed_chat_ends_with_its_counts(client: ollama.AsyncClient) -> None:
    stream = await client.chat(
        model="chain", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    parts = [part async for part in stream]
    assert len(parts) > 2
    assert "".join(p.message.content or "" for p in parts) == "Echo: one two three"
    assert all(not p.done for p in parts[:-1])
    last = parts[-1]
    assert (last.done, last.done_reason) == (True, "stop")
    assert last.prompt_eval_count and last.eval_count
    assert last.total_duration and last.prompt_eval_duration and last.eval_duration
    assert last.total_duration >= last.prompt_eval_duration + last.eval_duration


async def test_without_stream_it_streams_ndjson(edge_url: str) -> None:
    """Ollama's default: `stream` unset is a stream, one JSON object a line."""
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as http:
        body = {"model": "chain", "messages": [{"role": "user", "content": "a b"}]}
        answered = await http.post("/api/chat", json=body)
    assert answered.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in answered.content.splitlines()]
    assert len(lines) > 1 and lines[-1]["done"] is True
    assert "".join(line["message"]["content"] for line in lines) == "Echo: a b"


async def test_generate_with_a_system_streamed_and_not(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    answer = await client.generate(model="chain", prompt="hello", system="Be brief.")
    assert (answer.response, answer.done, answer.done_reason) == ("Echo: hello", True, "stop")
    assert answer.context is None and answer.eval_count
    assert sent(fake)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    stream = await client.generate(model="chain", prompt="x y z", stream=True)
    parts = [part async for part in stream]
    assert "".join(p.response or "" for p in parts) == "Echo: x y z"
    assert parts[-1].done and parts[-1].eval_count


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("suffix", "return x"),  # fill-in-the-middle: no deployment here takes it
        ("template", "{{ .Prompt }}"),
        ("context", [1, 2]),
        ("raw", True),  # a prompt already templated: a chat model would answer its markup
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_generate_field_that_would_change_the_answer_is_refused(
    client: ollama.AsyncClient, fake: FakeUpstream, field: str, value: Any, stream: bool
) -> None:
    given: dict[str, Any] = {field: value}
    with pytest.raises(ollama.ResponseError) as refused:
        if stream:
            parts = await client.generate(model="chain", prompt="f(", stream=True, **given)
            _ = [part async for part in parts]
        else:
            await client.generate(model="chain", prompt="f(", **given)

    assert refused.value.status_code == 400
    assert refused.value.error.startswith(f"{field}: ")
    assert fake.state.count() == 0


async def test_raw_false_is_the_default(client: ollama.AsyncClient, fake: FakeUpstream) -> None:
    answer = await client.generate(model="chain", prompt="hello", raw=False)
    assert answer.response == "Echo: hello"
    assert sent(fake)["messages"] == [{"role": "user", "content": "hello"}]


async def test_an_empty_prompt_loads_the_model(client: ollama.AsyncClient) -> None:
    loaded = await client.generate(model="chain")
    assert (loaded.response, loaded.done, loaded.done_reason) == ("", True, "load")
    unloaded = await client.chat(model="chain", messages=[], keep_alive=0)
    assert (unloaded.message.content, unloaded.done_reason) == ("", "unload")
    with pytest.raises(ollama.ResponseError) as unknown:
        await client.generate(model="nope")
    assert unknown.value.status_code == 404 and "nope" in unknown.value.error


async def test_a_tool_call_round_trip(client: ollama.AsyncClient, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    ask = {"role": "user", "content": "Weather in Oslo?"}
    first = await client.chat(model="chain", messages=[ask], tools=[WEATHER])
    (call,) = first.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Oslo"}
    assert sent(fake)["tools"][0]["function"]["name"] == "get_weather"
    fake.state.set_scenario(Scenario())
    result = {"role": "tool", "content": '{"sky": "grey"}', "tool_name": "get_weather"}
    second = await client.chat(model="chain", messages=[ask, first.message, result])
    assert second.message.content and not second.message.tool_calls
    messages = sent(fake)["messages"]
    tool_call = messages[1]["tool_calls"][0]
    assert tool_call["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": tool_call["id"],
        "content": '{"sky": "grey"}',
    }


async def test_a_streamed_tool_call_comes_whole(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    stream = await client.chat(
        model="chain", messages=[{"role": "user", "content": "?"}], tools=[WEATHER], stream=True
    )
    calls = [c async for part in stream for c in part.message.tool_calls or ()]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ]


async def test_think_asks_for_an_effort_and_returns_the_thinking(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(reasoning="Because it is.", times=3))
    ask = [{"role": "user", "content": "why?"}]
    answer = await client.chat(model="chain", messages=ask, think="high")
    assert answer.message.thinking == "Because it is."
    assert sent(fake)["reasoning_effort"] == "high"
    stream = await client.chat(model="chain", messages=ask, think="low", stream=True)
    parts = [part async for part in stream]
    assert "".join(p.message.thinking or "" for p in parts) == "Because it is."
    assert "".join(p.message.content or "" for p in parts) == "Echo: why?"


async def test_think_false_answers_no_thinking(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    """Ollama's `think: false`: the model does not think, and the answer has no thinking, even
    from a deployment that reasons whatever it is told (the fake's reasoning: DeepSeek's
    reasoner, o-series), plain and streamed, chat and generate."""
    fake.state.set_scenario(Scenario(reasoning="Because it is.", times=2))
    ask = [{"role": "user", "content": "why?"}]
    answer = await client.chat(model="chain", messages=ask, think=False)
    assert (answer.message.thinking, answer.message.content) == (None, "Echo: why?")
    assert sent(fake)["reasoning_effort"] == "none" and "include_reasoning" not in sent(fake)
    stream = await client.generate(model="chain", prompt="why?", think=False, stream=True)
    parts = [part async for part in stream]
    assert not [p.thinking for p in parts if p.thinking]
    assert "".join(p.response or "" for p in parts) == "Echo: why?" and parts[-1].done


async def test_a_refusal_is_the_answers_content(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    """Structured outputs' refusal (an OpenAI model's `refusal`, content null) is what the
    model said: Ollama has no other field for it, so it is the content (was an empty answer)."""
    said = "I'm sorry, I cannot help with that."
    fake.state.set_scenario(Scenario(content=said, refusal=True, times=2))
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}}
    ask = [{"role": "user", "content": "x"}]
    answer = await client.chat(model="chain", messages=ask, format=schema)
    assert (answer.message.content, answer.done_reason) == (said, "stop")
    stream = await client.generate(model="chain", prompt="x", format="json", stream=True)
    parts = [part async for part in stream]
    assert "".join(p.response or "" for p in parts) == said and parts[-1].done


async def test_format_is_structured_output(client: ollama.AsyncClient, fake: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}}
    await client.chat(model="chain", messages=[{"role": "user", "content": "x"}], format=schema)
    assert sent(fake)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    await client.generate(model="chain", prompt="x", format="json")
    assert sent(fake)["response_format"] == {"type": "json_object"}


async def test_images_are_data_urls(client: ollama.AsyncClient, fake: FakeUpstream) -> None:
    message = {"role": "user", "content": "what is this?", "images": [PNG]}
    await client.chat(model="chain", messages=[message])
    (user,) = sent(fake)["messages"]
    assert user["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]


async def test_embed_and_the_legacy_embeddings(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    several = await client.embed(model="embedder", input=["a", "b"], dimensions=8)
    assert [len(vector) for vector in several.embeddings] == [8, 8]
    assert several.model == "embedder" and several.prompt_eval_count
    assert sent(fake)["input"] == ["a", "b"] and sent(fake)["dimensions"] == 8
    one = await client.embed(model="embedder", input="a", truncate=True)
    assert len(one.embeddings) == 1
    legacy = await client.embeddings(model="embedder", prompt="a")
    assert legacy.embedding and all(isinstance(v, float) for v in legacy.embedding)


async def test_tags_show_ps_and_version(client: ollama.AsyncClient) -> None:
    listed = await client.list()
    names = {model.model for model in listed.models}
    assert names >= {"chain", "embedder"}
    chain = next(model for model in listed.models if model.model == "chain")
    assert chain.size == 0 and chain.digest and len(chain.digest) == 64
    assert chain.details is not None and chain.modified_at is not None
    shown = await client.show("chain")
    assert shown.capabilities == ["completion", "tools"] and shown.details is not None
    # A group configured `embeddings: true` serves embeddings only, as Ollama says of its own
    # embedding models (a client reading capabilities tells them from chat models by it).
    assert (await client.show("embedder")).capabilities == ["embedding"]
    with pytest.raises(ollama.ResponseError) as unknown:
        await client.show("nope")
    assert unknown.value.status_code == 404 and unknown.value.error == "model 'nope' not found"
    assert (await client.ps()).models == []


async def test_the_root_and_the_version_answer_as_ollama_does(edge_url: str) -> None:
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as http:
        root = await http.get("/")
        head = await http.head("/")
        version = await http.get("/api/version")
        tags = await http.get("/api/tags")
        heads = [await http.head(path) for path in ("/api/version", "/api/tags")]
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert head.status_code == 200 and head.content == b""
    # HEAD as GET without the body, as Ollama answers it (tools probe with it).
    assert [(h.status_code, h.content) for h in heads] == [(200, b""), (200, b"")]
    assert heads[1].headers["content-length"] == tags.headers["content-length"]
    assert version.json()["version"].count(".") == 2
    # A model list is the key's own: no shared cache keeps it.
    assert (tags.headers["cache-control"], tags.headers["vary"]) == ("private", "authorization")


async def test_an_empty_embed_loads_the_model(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    """Ollama's embed with nothing to embed (an empty batch) answers no vectors, as a load:
    no upstream is asked (OpenAI's refuses an empty input)."""
    before = fake.state.last()
    assert (await client.embed(model="embedder", input=[])).embeddings == []
    assert (await client.embed(model="embedder", input="")).embeddings == []
    assert (await client.embeddings(model="embedder", prompt="")).embedding == []
    assert fake.state.last() is before
    with pytest.raises(ollama.ResponseError) as unknown:
        await client.embed(model="nope", input=[])
    assert unknown.value.status_code == 404


async def test_a_name_with_the_latest_tag_is_the_model(
    client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    """Ollama names a model without a tag by its `latest` (`llama3` is `llama3:latest`), and
    clients write either: `chain:latest` is `chain` (was a 404) for chat, generate, embed, show
    and a load, plain and streamed."""
    ask = [{"role": "user", "content": "hi"}]
    answer = await client.chat(model="chain:latest", messages=ask)
    assert answer.message.content == "Echo: hi" and sent(fake)["model"] == "model-a"
    stream = await client.generate(model="chain:latest", prompt="hi", stream=True)
    assert "".join([part.response or "" async for part in stream]) == "Echo: hi"
    assert (await client.embed(model="embedder:latest", input="a")).embeddings
    assert (await client.show("chain:latest")).capabilities == ["completion", "tools"]
    assert (await client.generate(model="chain:latest", prompt="")).done_reason == "load"
