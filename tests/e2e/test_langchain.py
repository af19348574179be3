"""LangChain (`langchain-openai`) as a user points it at Switchboard: `ChatOpenAI`,
`OpenAIEmbeddings` and the completions LLM `OpenAI`, with `base_url` the real edge, in front of
a real router and the fake upstream. Only the async API: the servers run on the test's loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAI, OpenAIEmbeddings
from pydantic import BaseModel

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.http_edge.harness import Edge

StartEdge = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def options(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[dict[str, Any]]:
    """What every model here is built with: the edge, and an HTTP client the test closes
    (LangChain's own default client is never closed)."""
    edge = await start_edge(router)
    async with httpx.AsyncClient() as http:
        yield {
            "base_url": f"{edge.base_url}/v1",
            "api_key": "sk-caller",
            "max_retries": 0,
            "timeout": 10,
            "http_async_client": http,
        }


def chat_bodies(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [call.body for call in fake.state.calls() if call.path.endswith("/chat/completions")]


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"sunny in {city}"


class Forecast(BaseModel):
    """A city's forecast."""

    city: str
    sunny: bool


async def test_chat_invoke(options: dict[str, Any]) -> None:
    llm = ChatOpenAI(model="chain", **options)
    reply = await llm.ainvoke("hello world")
    assert isinstance(reply, AIMessage)
    assert reply.content == "Echo: hello world"
    assert reply.response_metadata["model_name"] == "model-a"
    assert reply.usage_metadata is not None and reply.usage_metadata["total_tokens"] == 5


async def test_chat_stream_with_usage(options: dict[str, Any], fake: FakeUpstream) -> None:
    llm = ChatOpenAI(model="chain", stream_usage=True, **options)
    chunks = [chunk async for chunk in llm.astream("one two three")]
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert isinstance(whole, AIMessageChunk)
    assert whole.content == "Echo: one two three"
    assert whole.usage_metadata is not None and whole.usage_metadata["output_tokens"] == 4
    [body] = chat_bodies(fake)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_bind_tools_and_a_tool_round_trip(
    options: dict[str, Any], fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    llm = ChatOpenAI(model="chain", **options).bind_tools([get_weather])
    question = HumanMessage("weather in Paris?")
    call = await llm.ainvoke([question])
    assert isinstance(call, AIMessage)
    [tool_call] = call.tool_calls
    assert (tool_call["name"], tool_call["args"]) == ("get_weather", {"city": "Paris"})
    result = await get_weather.ainvoke(tool_call)
    assert isinstance(result, ToolMessage)
    answer = await llm.ainvoke([question, call, result])
    assert answer.content == "Echo: weather in Paris?"
    first, second = chat_bodies(fake)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": tool_call["id"],
        "content": "sunny in Paris",
    }


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_with_structured_output(
    options: dict[str, Any], fake: FakeUpstream, method: str
) -> None:
    arguments = {"city": "Paris", "sunny": True}
    if method == "json_schema":
        fake.state.set_scenario(Scenario(content='{"city": "Paris", "sunny": true}'))
    else:
        fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=arguments))
    llm = ChatOpenAI(model="chain", **options)
    structured = llm.with_structured_output(Forecast, method=method)  # type: ignore[arg-type]
    assert await structured.ainvoke("weather?") == Forecast(city="Paris", sunny=True)
    [body] = chat_bodies(fake)
    if method == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Forecast"
    else:
        assert body["tool_choice"]["function"]["name"] == "Forecast"


async def test_embeddings(options: dict[str, Any], fake: FakeUpstream) -> None:
    # LangChain tokenizes with tiktoken by default (its files come from the internet) and sends
    # token arrays; `check_embedding_ctx_length=False` sends the texts (see the README).
    embeddings = OpenAIEmbeddings(model="embedder", check_embedding_ctx_length=False, **options)
    vectors = await embeddings.aembed_documents(["one", "two"])
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    assert await embeddings.aembed_query("one") == vectors[0]
    record = fake.state.last(path="/embeddings")
    assert record is not None and record.body["input"] == ["one"]


async def test_the_completions_llm(options: dict[str, Any], fake: FakeUpstream) -> None:
    llm = OpenAI(model="chain", **options)
    assert await llm.ainvoke("hello world") == "Echo: hello world"
    body = chat_bodies(fake)[-1]
    assert body["messages"] == [{"role": "user", "content": "hello world"}]
    assert body["max_tokens"] == 256  # LangChain's default, sent explicitly
    pieces = [piece async for piece in llm.astream("one two")]
    assert "".join(pieces) == "Echo: one two" and len(pieces) > 1


async def test_the_completions_llm_batches_prompts_in_one_request(
    options: dict[str, Any], fake: FakeUpstream
) -> None:
    # LangChain sends up to 20 prompts in one request: each is a chat call of its own.
    llm = OpenAI(model="chain", **options)
    assert await llm.abatch(["one", "two", "three"]) == ["Echo: one", "Echo: two", "Echo: three"]
    result = await llm.agenerate(["four", "five"])
    assert [[g.text for g in gens] for gens in result.generations] == [
        ["Echo: four"],
        ["Echo: five"],
    ]
