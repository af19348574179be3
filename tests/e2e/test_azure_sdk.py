"""An Azure OpenAI deployment as a user sees it: the official `openai` SDK → the HTTP edge → the
router → the fake upstream speaking Azure's deployment-based API. Azure's content-filter
annotations reach the caller in OpenAI's shapes, and its refusals as OpenAI's exceptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


def config(fake: FakeUpstream) -> dict[str, Any]:
    return {
        "providers": {
            "az": {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]},
            "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
        },
        "models": {
            "chat": {
                "deployments": [
                    {"provider": "az", "model": "gpt-4o-prod"},
                    {"provider": "backup", "model": "m-backup"},
                ]
            },
            "vectors": {"deployments": [{"provider": "az", "model": "embed-prod"}]},
        },
        "server": {"port": 0},
    }


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture
async def sdk(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


async def test_a_stream_reads_as_openais(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    """Azure opens with `choices: []` and no id; the caller reads `choices[0]` of every chunk
    (as code written against OpenAI does) and finds the prompt filter's verdict on the first."""
    stream = await sdk.chat.completions.create(model="chat", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    opening = (chunks[0].model_extra or {})["prompt_filter_results"]
    assert opening[0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert all("content_filter_results" in (c.choices[0].model_extra or {}) for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    record = fake.state.last()
    assert record is not None and record.path.startswith("/openai/deployments/gpt-4o-prod/")


async def test_an_answer_carries_azures_annotations(sdk: openai.AsyncOpenAI) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    completion = raw.parse()

    assert completion.choices[0].message.content == "Echo: hello there"
    assert raw.headers["x-switchboard-deployment"] == "az/gpt-4o-prod"
    assert (completion.model_extra or {})["prompt_filter_results"][0]["prompt_index"] == 0
    results = (completion.choices[0].model_extra or {})["content_filter_results"]
    assert results["violence"]["filtered"] is False


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_filtered_completion_is_an_answer(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    """`finish_reason: content_filter` is Azure's output filter at work: an answer that ends
    there, not an error and not a failure to fail over from."""
    fake.state.set_scenario(Scenario(finish_reason="content_filter"), model="gpt-4o-prod")
    if streaming:
        stream = await sdk.chat.completions.create(model="chat", messages=HELLO, stream=True)
        chunks = [chunk async for chunk in stream]
        finish = chunks[-1].choices[0].finish_reason
        results = (chunks[-1].choices[0].model_extra or {})["content_filter_results"]
    else:
        completion = await sdk.chat.completions.create(model="chat", messages=HELLO)
        finish = completion.choices[0].finish_reason
        results = (completion.choices[0].model_extra or {})["content_filter_results"]

    assert finish == "content_filter"
    assert results["violence"] == {"filtered": True, "severity": "medium"}
    assert fake.state.count(model="m-backup") == 0


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_refused_prompt_is_a_bad_request_with_azures_words(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    fake.state.set_scenario(Scenario(blocked="hate"), model="gpt-4o-prod")

    with pytest.raises(openai.BadRequestError) as caught:
        if streaming:
            await sdk.chat.completions.create(model="chat", messages=HELLO, stream=True)
        else:
            await sdk.chat.completions.create(model="chat", messages=HELLO)

    error = caught.value
    assert (error.status_code, error.code) == (400, "content_filter")
    assert "content management policy" in error.message
    assert error.param == "prompt"
    assert isinstance(error.body, dict)
    inner = error.body["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["hate"]["filtered"] is True
    assert fake.state.count(model="m-backup") == 0  # the caller's to change, not a failover


async def test_embeddings(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    result = await sdk.embeddings.create(model="vectors", input=["a", "b"])

    assert [len(item.embedding) for item in result.data] == [8, 8]
    record = fake.state.last()
    assert record is not None
    assert (record.path, record.query) == (
        "/openai/deployments/embed-prod/embeddings",
        {"api-version": "2024-10-21"},
    )
