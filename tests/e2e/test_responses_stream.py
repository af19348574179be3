"""Streamed Responses (`stream=True`, `client.responses.stream(...)`) through the real stack: the
official `openai` SDK → the edge → the router → the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.responses import FunctionToolParam, ResponseStreamEvent
from pydantic import TypeAdapter

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.http_edge.harness import Edge

StartEdge = Callable[..., Awaitable[Edge]]
EVENT = TypeAdapter[Any](ResponseStreamEvent)
TOOL: FunctionToolParam = {"type": "function", "name": "lookup", "parameters": {}, "strict": None}


@pytest.fixture
async def edge(router: RouterHandle, start_edge: StartEdge) -> Edge:
    return await start_edge(router)


@pytest.fixture
async def sdk(edge: Edge) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


async def collect(sdk: openai.AsyncOpenAI, **request: Any) -> list[Any]:
    stream = await sdk.responses.create(model="chain", stream=True, **request)
    events = [event async for event in stream]
    for event in events:  # strictly, as the SDK itself does not
        EVENT.validate_python(event.model_dump(mode="json", by_alias=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


async def test_stream_true_yields_text_deltas_and_a_completed_response(
    sdk: openai.AsyncOpenAI,
) -> None:
    events = await collect(sdk, input="one two three")
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Echo: one two three" and len(deltas) == 4
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == "Echo: one two three"
    assert done.response.usage is not None and done.response.usage.output_tokens == 4
    assert done.response.id == events[0].response.id


async def test_the_stream_helper_gives_the_final_response(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(
        model="chain", input="hello there", instructions="Be brief."
    ) as stream:
        texts = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(texts) == final.output_text == "Echo: hello there"
    assert final.status == "completed" and final.instructions == "Be brief."
    assert final.usage is not None and final.usage.total_tokens == 7  # 4 words in, 3 out


async def test_a_streamed_tool_call(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"q": "x"}))
    async with sdk.responses.stream(model="chain", input="look it up", tools=[TOOL]) as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    [call] = final.output
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.call_id) == ("lookup", '{"q":"x"}', "call_fake_1")


async def test_a_length_finish_ends_with_response_incomplete(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="length"))
    events = await collect(sdk, input="tell me a story", max_output_tokens=3)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


async def test_a_failure_before_the_first_token_is_a_real_http_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="9"))
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.responses.create(model="chain", input="hi", stream=True)
    assert caught.value.response.headers["retry-after"] == "9"


async def test_a_failure_after_the_first_token_is_an_error_event_then_response_failed(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(chunks=6, reset_after_chunks=3))
    events = await collect(sdk, input="hi")
    assert any(e.type == "response.output_text.delta" for e in events)
    error, failed = events[-2:]
    assert error.type == "error" and error.code == "upstream_error"
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    assert fake.state.count(path="/chat/completions") == 1  # no failover once text was sent
    # Not kept (only an answer is), and the Response says so, as one not stored does.
    assert failed.response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(failed.response.id)


async def test_the_wire_has_named_events_route_headers_and_no_done(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        body = {"model": "chain", "input": "hi", "stream": True}
        response = await http.post("/v1/responses", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-switchboard-deployment"] == "alpha/model-a"
    blocks = [b for b in response.content.split(b"\n\n") if b and not b.startswith(b":")]
    for block in blocks:
        name, data = block.split(b"\n")
        assert (
            name.removeprefix(b"event: ")
            == orjson.loads(data.removeprefix(b"data: "))["type"].encode()
        )
    assert blocks[0].startswith(b"event: response.created\n")
    assert blocks[-1].startswith(b"event: response.completed\n")
    assert b"[DONE]" not in response.content
