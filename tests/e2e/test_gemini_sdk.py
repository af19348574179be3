"""Google's own SDK (google-genai) → the edge's Gemini API (`/v1beta/models/…`) → the router →
the fake upstream, answered by an OpenAI-kind deployment (`chain`) or a Gemini-kind one
(`flash`)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

KINDS = ("chain", "flash")
TEXTS: Any = ["a", "b", "c"]  # OpenAI-kind deployments, and a Gemini-kind one
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
    ),
)


def config(fake: FakeUpstream, **sections: Any) -> dict[str, Any]:
    google = {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]}
    out = base_config(fake.base_url, **sections)
    out["providers"]["google"] = google
    out["models"]["flash"] = {"deployments": [{"provider": "google", "model": "gemini-x"}]}
    out["models"]["gembed"] = {"deployments": [{"provider": "google", "model": "gemini-embed"}]}
    out["models"]["gembed"]["embeddings"] = out["models"]["embedder"]["embeddings"] = True
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.mark.parametrize("model", KINDS)
async def test_a_text_with_a_system_instruction(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    response = await gemini.aio.models.generate_content(
        model=model,
        contents="hello world",
        config=types.GenerateContentConfig(
            system_instruction="Answer briefly.",
            temperature=0.5,
            max_output_tokens=64,
            stop_sequences=["END"],
        ),
    )
    assert response.text == "Echo: hello world"
    (candidate,) = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None and candidate.content.role == "model"
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.response_id and response.model_version in ("model-a", "gemini-x")
    headers = (response.sdk_http_response.headers or {}) if response.sdk_http_response else {}
    assert headers["x-switchboard-deployment"].endswith(("/model-a", "/gemini-x"))
    sent = fake.state.last()
    assert sent is not None
    if model == "flash":  # the router's Gemini mapping, back again
        assert sent.body["systemInstruction"] == {"parts": [{"text": "Answer briefly."}]}
        config = sent.body["generationConfig"]
        assert (config["temperature"], config["maxOutputTokens"]) == (0.5, 64)
        assert config["stopSequences"] == ["END"]
    else:
        assert sent.body["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert (sent.body["max_tokens"], sent.body["stop"]) == (64, ["END"])


@pytest.mark.parametrize("model", KINDS)
async def test_top_k_as_the_sdk_sends_it(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    """google-genai types `top_k` a float and sends `"topK": 5.0`, which Gemini takes (proto
    JSON reads a number with no fraction as an integer): so do the integer fields here."""
    settings = types.GenerateContentConfig(top_k=5)
    response = await gemini.aio.models.generate_content(model=model, contents="hi", config=settings)

    assert response.text == "Echo: hi"
    sent = fake.state.last()
    assert sent is not None
    top_k = sent.body["generationConfig"]["topK"] if model == "flash" else sent.body["top_k"]
    assert top_k == 5 and type(top_k) is int


@pytest.mark.parametrize("model", KINDS)
async def test_a_multi_turn_chat(gemini: genai.Client, fake: FakeUpstream, model: str) -> None:
    chat = gemini.aio.chats.create(model=model)
    first = await chat.send_message("one")
    second = await chat.send_message("two")
    assert (first.text, second.text) == ("Echo: one", "Echo: two")
    sent = fake.state.last()
    assert sent is not None
    if model == "flash":
        assert [c["role"] for c in sent.body["contents"]] == ["user", "model", "user"]
    else:
        turns = [(m["role"], m["content"]) for m in sent.body["messages"]]
        assert turns == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]


@pytest.mark.parametrize("model", KINDS)
async def test_a_function_call_round_trip(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    ask = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Oslo?")])
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = await gemini.aio.models.generate_content(model=model, contents=[ask], config=config)
    (call,) = first.function_calls or []
    assert call.name == "get_weather" and call.args == {"city": "Oslo"}
    result = types.Part.from_function_response(name="get_weather", response={"sky": "grey"})
    answer = first.candidates[0].content if first.candidates else None
    assert answer is not None
    turns = [ask, answer, types.Content(role="user", parts=[result])]
    second = await gemini.aio.models.generate_content(
        model=model, contents=turns, config=types.GenerateContentConfig(tools=config.tools)
    )
    assert second.text and not second.function_calls
    sent = fake.state.last()
    assert sent is not None
    if model == "flash":
        response = sent.body["contents"][-1]["parts"][0]["functionResponse"]
        assert (response["name"], response["response"]) == ("get_weather", {"sky": "grey"})
    else:
        tool_call = sent.body["messages"][1]["tool_calls"][0]
        assert tool_call["function"]["name"] == "get_weather"
        assert sent.body["messages"][2] == {
            "role": "tool",
            "tool_call_id": tool_call["id"],
            "content": '{"sky":"grey"}',
        }
        schema = sent.body["tools"][0]["function"]["parameters"]
        assert schema == {"type": "object", "properties": {"city": {"type": "string"}}}


async def test_a_refusal_is_the_answers_text(gemini: genai.Client, fake: FakeUpstream) -> None:
    """Structured outputs' refusal (an OpenAI model's `refusal`, content null) is what the
    model said: Gemini has no other field for it, so it is the text (was an empty answer)."""
    said = "I'm sorry, I cannot help with that."
    fake.state.set_scenario(Scenario(content=said, refusal=True, times=2))
    json_out = types.GenerateContentConfig(response_mime_type="application/json")
    models = gemini.aio.models
    response = await models.generate_content(model="chain", contents="x", config=json_out)
    assert response.text == said
    stream = await models.generate_content_stream(model="chain", contents="x", config=json_out)
    chunks = [chunk async for chunk in stream]
    assert "".join(chunk.text or "" for chunk in chunks) == said
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "STOP"


@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_text(gemini: genai.Client, model: str) -> None:
    stream = await gemini.aio.models.generate_content_stream(model=model, contents="one two three")
    chunks = [chunk async for chunk in stream]
    assert len(chunks) > 1
    assert "".join(chunk.text or "" for chunk in chunks) == "Echo: one two three"
    last = chunks[-1]
    assert last.text  # the last text comes with the finish, as Gemini's does
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count
    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])


@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_function_call_comes_whole(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    stream = await gemini.aio.models.generate_content_stream(
        model=model, contents="weather?", config=config
    )
    calls = [call async for chunk in stream for call in chunk.function_calls or ()]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Oslo"})]


async def test_count_tokens_is_the_routers_estimate(gemini: genai.Client) -> None:
    counted = await gemini.aio.models.count_tokens(model="chain", contents="hello world " * 10)
    assert counted.total_tokens is not None and counted.total_tokens > 10


async def test_embed_one_and_several(gemini: genai.Client, fake: FakeUpstream) -> None:
    one = await gemini.aio.models.embed_content(model="embedder", contents="hello")
    (embedding,) = one.embeddings or []
    assert embedding.values and all(isinstance(v, float) for v in embedding.values)
    several = await gemini.aio.models.embed_content(
        model="embedder",
        contents=TEXTS,
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    assert [len(e.values or ()) for e in several.embeddings or ()] == [8, 8, 8]
    sent = fake.state.last()
    assert sent is not None and sent.body["input"] == ["a", "b", "c"]


@pytest.mark.parametrize("texts", [["query"], ["a", "b"]], ids=["embed", "batch"])
async def test_a_task_type_and_title_reach_a_gemini_deployment(
    gemini: genai.Client, fake: FakeUpstream, texts: list[str]
) -> None:
    """google-genai's `task_type` (a query is embedded otherwise than a document) and `title`
    reach the Gemini deployment, as an OpenAI caller's `taskType` does; the entrance accepted
    them and dropped them, so a query got a document's vector without a word."""
    hints = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", title="Doc")

    contents: Any = texts  # as TEXTS: google-genai's contents type differs with Pillow installed
    answer = await gemini.aio.models.embed_content(model="gembed", contents=contents, config=hints)

    assert len(answer.embeddings or ()) == len(texts)
    body = fake.state.last().body  # type: ignore[union-attr]
    sent = body["requests"] if len(texts) > 1 else [body]
    assert [(r["taskType"], r["title"]) for r in sent] == [("RETRIEVAL_DOCUMENT", "Doc")] * len(
        texts
    )
    assert [r["content"] for r in sent] == [{"parts": [{"text": t}]} for t in texts]


async def test_task_type_is_not_sent_to_an_openai_kind_deployment(
    gemini: genai.Client, fake: FakeUpstream
) -> None:
    """Google's hints are Google's models': an OpenAI-format server with a strict schema
    (OpenAI's own) refuses a property it does not know with a 400."""
    hints = types.EmbedContentConfig(task_type="RETRIEVAL_QUERY", title="Doc")

    await gemini.aio.models.embed_content(model="embedder", contents=TEXTS[:2], config=hints)

    body = fake.state.last().body  # type: ignore[union-attr]
    assert set(body) == {"model", "input"}


async def test_models_are_the_callers(gemini: genai.Client) -> None:
    names = [model.name async for model in await gemini.aio.models.list()]
    assert set(names) >= {"models/chain", "models/flash", "models/embedder"}
    model = await gemini.aio.models.get(model="chain")
    assert model.name == "models/chain"
    assert model.supported_actions and "generateContent" in model.supported_actions


async def test_an_embeddings_group_lists_the_embed_methods_alone(gemini: genai.Client) -> None:
    """Google's way to find the chat models (its docs: `"generateContent" in
    m.supported_actions`) passes over a group configured `embeddings: true`, as Gemini's own
    embedding models are passed over; a group that does not say so may answer either."""
    listed = {model.name: model async for model in await gemini.aio.models.list()}
    chats = {
        name
        for name, model in listed.items()
        if "generateContent" in (model.supported_actions or ())
    }
    embedders = {
        name for name, model in listed.items() if "embedContent" in (model.supported_actions or ())
    }
    assert {"models/chain", "models/flash"} <= chats
    assert not {"models/embedder", "models/gembed", "models/alpha/embed-a"} & chats
    assert {"models/embedder", "models/gembed", "models/chain"} <= embedders
    model = await gemini.aio.models.get(model="gembed")
    assert model.supported_actions == ["embedContent", "batchEmbedContents", "countTokens"]


async def test_failover_is_invisible(gemini: genai.Client, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    response = await gemini.aio.models.generate_content(model="chain", contents="hi")
    assert response.text == "Echo: hi"
    headers = (response.sdk_http_response.headers or {}) if response.sdk_http_response else {}
    assert headers["x-switchboard-deployment"] == "beta/model-b"
    assert headers["x-switchboard-attempts"] == "2"


async def test_the_v1beta_api_answers_as_v1_does(
    router: RouterHandle, start_edge: StartEdge
) -> None:
    edge = await start_edge(router)
    async with httpx.AsyncClient(timeout=10) as http:
        options = types.HttpOptions(
            base_url=edge.base_url, api_version="v1beta", httpx_async_client=http
        )
        client = genai.Client(api_key="sk-caller", http_options=options)
        response = await client.aio.models.generate_content(model="models/flash", contents="hi")
        assert response.text == "Echo: hi"
        stream = await client.aio.models.generate_content_stream(model="chain", contents="a b")
        assert "".join([chunk.text or "" async for chunk in stream]) == "Echo: a b"
        names = [model.name async for model in await client.aio.models.list()]
        assert "models/chain" in names
        client.close()
