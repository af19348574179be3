"""Every adapter as a user sees it: the official `openai` SDK → the HTTP edge → the router → the
fake upstream speaking the provider's format. Whatever the provider, the caller gets OpenAI's
shapes, statuses and exceptions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import openai
import pytest
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import PDF_B64, PDF_PART, PNG_B64, WEATHER_TOOL
from tests.conformance.profiles import BY_KIND, Profile, mixed_config
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge

StartEdge = Callable[..., Awaitable[Edge]]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


async def _client(edge: Edge) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    )


@pytest.fixture
async def sdk(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    async with await _client(await start_edge(router)) as client:
        yield client


async def test_chat(sdk: openai.AsyncOpenAI) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="solo",
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
        max_tokens=30,
        stop=["END"],
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert raw.headers["x-switchboard-deployment"] == "up/m-up"


async def test_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="solo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Echo: one two three"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


async def test_legacy_completions(sdk: openai.AsyncOpenAI) -> None:
    """`POST /v1/completions` is a chat call at the router: every adapter answers it."""
    completion = await sdk.completions.create(model="solo", prompt="hello there", max_tokens=30)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    stream = await sdk.completions.create(
        model="solo",
        prompt="one two three",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


async def test_tool_call_round_trip(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, profile: Profile
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    question: ChatCompletionUserMessageParam = {"role": "user", "content": "what is the weather"}

    first = await sdk.chat.completions.create(
        model="solo", messages=[question], tools=[WEATHER_TOOL]
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function"
    assert (call.type, call.function.name) == ("function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    result: ChatCompletionToolMessageParam = {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "22 degrees",
    }
    # The answer's message, sent back as the request's assistant message.
    assistant = cast(ChatCompletionAssistantMessageParam, message.model_dump(exclude_none=True))
    second = await sdk.chat.completions.create(
        model="solo",
        messages=[question, assistant, result],
        tools=[WEATHER_TOOL],
    )
    assert second.choices[0].message.content == "Echo: what is the weather"
    record = fake.state.last(model="m-up")
    assert record is not None
    seen = profile.read(record.body)
    assert seen.tool_results == ["22 degrees"]


async def test_streamed_tool_call(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    stream = await sdk.chat.completions.create(
        model="solo",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]

    assert {d.index for d in deltas} == {0}
    assert [d.function.name for d in deltas if d.function and d.function.name] == ["get_weather"]
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


async def test_image_part(sdk: openai.AsyncOpenAI, fake: FakeUpstream, profile: Profile) -> None:
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
    ]
    completion = await sdk.chat.completions.create(
        model="solo",
        messages=[{"role": "user", "content": content}],
    )
    assert completion.choices[0].message.content == "Echo: describe"
    record = fake.state.last(model="m-up")
    assert record is not None
    seen = profile.read(record.body)
    assert seen.images == [PNG_B64]


async def test_pdf_file_part(sdk: openai.AsyncOpenAI, fake: FakeUpstream, profile: Profile) -> None:
    """An app sends a PDF as OpenAI's `file` part: every format that takes PDFs gets it in its
    own shape (a Claude document block, Gemini inline data); Cohere cannot, so the caller gets
    a 400 saying what Cohere takes, or the group's next deployment answers."""
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "summarise"},
        cast(ChatCompletionContentPartParam, PDF_PART),
    ]
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": content}]
    if "file" not in profile.takes:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(model="solo", messages=messages)
        assert caught.value.status_code == 400
        assert f"{profile.says} takes text and image_url" in caught.value.message
        assert fake.state.count() == 0
    raw = await sdk.chat.completions.with_raw_response.create(model="chain", messages=messages)

    assert raw.parse().choices[0].message.content == "Echo: summarise"
    served = "m-up" if "file" in profile.takes else "m-backup"
    assert raw.headers["x-switchboard-deployment"].endswith(f"/{served}")
    record = fake.state.last(model=served)
    assert record is not None
    read = profile.read if served == "m-up" else BY_KIND["openai"].read
    assert read(record.body).documents == [("application/pdf", PDF_B64)]


async def test_embeddings(sdk: openai.AsyncOpenAI, profile: Profile) -> None:
    if not profile.embeds:
        with pytest.raises(openai.BadRequestError):
            await sdk.embeddings.create(model="vectors", input=["a", "b"])
        return
    # The SDK asks for base64 and decodes it: the adapter packs float32 as OpenAI does.
    result = await sdk.embeddings.create(model="vectors", input=["a", "b"])
    assert [len(item.embedding) for item in result.data] == [8, 8]


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        (Scenario.rate_limited(retry_after="3"), openai.RateLimitError),
        (Scenario(wrapped_error={"code": 429, "message": "slow down"}), openai.RateLimitError),
        (Scenario(status=400), openai.BadRequestError),
        (Scenario(blocked="SAFETY"), openai.BadRequestError),
        (Scenario.invalid_key(style="native"), openai.InternalServerError),
    ],
    ids=["rate_limited", "wrapped_rate_limit", "bad_request", "content_filter", "invalid_keys"],
)
async def test_errors_are_openai_errors(
    sdk: openai.AsyncOpenAI,
    fake: FakeUpstream,
    scenario: Scenario,
    error: type[openai.APIStatusError],
) -> None:
    fake.state.set_scenario(scenario, model="m-up")
    with pytest.raises(error) as caught:
        await sdk.chat.completions.create(model="solo", messages=HELLO)
    assert isinstance(caught.value.body, dict) and caught.value.body.get("message")


async def test_error_mid_stream(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(chunks=6, wrapped_error={}, wrapped_error_at_chunk=5))
    stream = await sdk.chat.completions.create(
        model="solo",
        messages=HELLO,
        stream=True,
    )
    text = ""
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert text.startswith("Echo:")


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_anthropic_fails_over_to_gemini(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, streaming: bool
) -> None:
    anthropic, gemini = BY_KIND["anthropic"], BY_KIND["gemini"]
    router = await start_router(mixed_config(fake, anthropic, gemini))
    fake.state.set_scenario(Scenario.server_error(529), model="m-first")  # overloaded_error
    async with await _client(await start_edge(router)) as sdk:
        if streaming:
            stream = await sdk.chat.completions.create(
                model="mixed",
                messages=HELLO,
                stream=True,
            )
            chunks = [chunk async for chunk in stream]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert len({c.id for c in chunks}) == 1
        else:
            raw = await sdk.chat.completions.with_raw_response.create(
                model="mixed",
                messages=HELLO,
            )
            assert raw.headers["x-switchboard-deployment"] == "second/m-second"
            assert raw.headers["x-switchboard-attempts"] == "2"
            text = raw.parse().choices[0].message.content or ""
    assert text == "Echo: hello there"
    assert [r.path for r in fake.state.calls()] == [
        "/v1/messages",
        f"/v1beta/models/m-second:{'streamGenerateContent' if streaming else 'generateContent'}",
    ]


async def test_top_logprobs_without_logprobs_is_openais_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """OpenAI takes `top_logprobs` (0 to 20) only beside `logprobs: true`: whatever kind the
    group's deployments are, the caller has OpenAI's 400 naming it, before any upstream call (a
    Gemini deployment would answer without logprobs, an OpenAI one refuse it)."""
    asked: list[dict[str, object]] = [
        {"top_logprobs": 2},
        {"top_logprobs": 2, "logprobs": False},
        {"top_logprobs": 21, "logprobs": True},
        {"top_logprobs": -1, "logprobs": True},
    ]
    for body in asked:
        for streamed in (False, True):
            with pytest.raises(openai.BadRequestError) as caught:
                await sdk.chat.completions.create(
                    model="chain", messages=HELLO, stream=streamed, extra_body=body
                )
            assert (caught.value.status_code, caught.value.param) == (400, "top_logprobs")
            assert caught.value.type == "invalid_request_error"
            assert "top_logprobs" in caught.value.message
    assert fake.state.count() == 0
    # Both asked, the call is made.
    answer = await sdk.chat.completions.create(
        model="chain", messages=HELLO, logprobs=True, top_logprobs=2
    )
    assert answer.choices[0].message.content == "Echo: hello there"
