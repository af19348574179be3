"""`truncation: "auto"` as the official SDK sees it through the edge: an input past the model's
context window is answered with the oldest turns left out (the fake upstream refuses, as OpenAI
does, a prompt past a `context_window` of words); `disabled` (the default) is the 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from openai.types.responses import Response, ResponseInputParam

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.background import settled
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import (
    Open,
    counts,
    jsonl,
    lines_of,
    open_batches,
    responses_line,
    run_batch,
)
from tests.router_service.server.test_truncation_limits import TPM_TOO_LARGE, one_key
from tests.router_service.server.test_truncation_native import on_responses

__all__ = ["open_batches"]  # the fixture, used here

# 2 + 4 + 4 + 4 + 4 + 2 words: 20, past a window of 12.
INSTRUCTIONS = "Be brief."
LONG: ResponseInputParam = [
    {"role": "user", "content": "one two three four"},
    {"role": "assistant", "content": "five six seven eight"},
    {"role": "user", "content": "nine ten eleven twelve"},
    {"role": "assistant", "content": "thirteen fourteen fifteen sixteen"},
    {"role": "user", "content": "what now"},
]
# What fits: the oldest turn left out, the instructions and the latest turns kept (12 words).
FITTED = [
    {"role": "system", "content": INSTRUCTIONS},
    {"role": "user", "content": "nine ten eleven twelve"},
    {"role": "assistant", "content": "thirteen fourteen fifteen sixteen"},
    {"role": "user", "content": "what now"},
]


def sent(fake: FakeUpstream) -> list[dict[str, Any]]:
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    return list(record.body["messages"])


def bodies(fake: FakeUpstream) -> list[int | None]:
    """The status of each chat call the upstream answered, in order."""
    return [call.status for call in fake.state.calls(path="/chat/completions")]


@asynccontextmanager
async def sdk_on(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK through an edge in front of `router` (a config of the test's own)."""
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        yield sdk


@pytest.fixture(autouse=True)
def small_window(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(context_window=12))


async def test_auto_answers_with_the_oldest_turns_left_out(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.responses.with_raw_response.create(
        model="chain", instructions=INSTRUCTIONS, input=LONG, truncation="auto"
    )
    response = Response.model_validate(raw.http_response.json())
    assert (response.status, response.truncation) == ("completed", "auto")
    assert response.output_text == "Echo: what now"
    assert response.usage is not None and response.usage.input_tokens == 12  # what was sent
    assert sent(fake) == FITTED
    assert bodies(fake) == [400, 200]  # the same deployment, asked again shorter
    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert raw.headers["x-switchboard-attempts"] == "2"
    assert raw.headers["x-switchboard-truncated-messages"] == "2"
    assert (await sdk.responses.retrieve(response.id)).truncation == "auto"


async def test_disabled_is_the_upstreams_400(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    for truncation in ("disabled", None):
        extra = {} if truncation is None else {"truncation": truncation}
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.responses.create(
                model="chain", instructions=INSTRUCTIONS, input=LONG, extra_body=extra
            )
        assert refused.value.code == "context_length_exceeded"
    assert bodies(fake) == [400, 400]  # once each: nothing shortened


async def test_a_stream_is_answered_shortened(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    stream = await sdk.responses.create(
        model="chain", instructions=INSTRUCTIONS, input=LONG, truncation="auto", stream=True
    )
    events = [event async for event in stream]
    [completed] = [e for e in events if e.type == "response.completed"]
    assert completed.response.truncation == "auto"
    assert completed.response.output_text == "Echo: what now"
    assert sent(fake) == FITTED and bodies(fake) == [400, 200]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_background_response_is_answered_shortened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle, stream: bool
) -> None:
    fields: dict[str, Any] = {"instructions": INSTRUCTIONS, "input": LONG, "truncation": "auto"}
    if stream:
        events = [
            e
            async for e in await sdk.responses.create(
                model="chain", background=True, stream=True, **fields
            )
        ]
        response_id = events[0].response.id
        assert events[-1].type == "response.completed"
    else:
        started = await sdk.responses.create(model="chain", background=True, **fields)
        response_id = started.id
    final = await settled(sdk, response_id, router.server)
    assert (final.status, final.truncation, final.output_text) == (
        "completed",
        "auto",
        "Echo: what now",
    )
    assert sent(fake) == FITTED


async def test_a_continuation_keeps_the_whole_conversation_stored(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The stored conversation is the whole one: each continuation is shortened for the
    window anew, and a larger window later gets every turn back."""
    first = await sdk.responses.create(
        model="chain", input=LONG[:2], truncation="auto", instructions=INSTRUCTIONS
    )
    assert bodies(fake) == [200]  # 10 words: it fits, nothing left out
    second = await sdk.responses.create(
        model="chain",
        input=LONG[2:],
        previous_response_id=first.id,
        truncation="auto",
        instructions=INSTRUCTIONS,
    )
    assert second.output_text == "Echo: what now"
    # The first response's answer is a turn of the conversation: it went with the oldest.
    assert sent(fake) == FITTED
    fake.state.clear_scenarios()
    third = await sdk.responses.create(
        model="chain", input="and then", previous_response_id=second.id, instructions="Brief."
    )
    assert third.output_text == "Echo: and then"
    contents = [message["content"] for message in sent(fake)]
    assert contents[1:3] == ["one two three four", "five six seven eight"]


async def test_a_batch_line_is_answered_shortened(fake: FakeUpstream, open_batches: Open) -> None:
    router, sdk, _ = await open_batches()
    lines = [
        responses_line(name, input=LONG, instructions=INSTRUCTIONS, **extra)
        for name, extra in (("auto", {"truncation": "auto"}), ("whole", {}))
    ]
    done = await run_batch(router, sdk, jsonl(*lines), "/v1/responses")
    assert counts(done) == (2, 1, 1)
    assert done.output_file_id is not None
    [answered] = await lines_of(sdk, done.output_file_id)
    body = answered["response"]["body"]
    assert (answered["custom_id"], body["truncation"]) == ("auto", "auto")
    assert body["usage"]["input_tokens"] == 12
    assert done.error_file_id is not None
    [refused] = await lines_of(sdk, done.error_file_id)
    assert refused["custom_id"] == "whole"
    assert refused["response"]["body"]["error"]["code"] == "context_length_exceeded"


async def test_a_retry_the_keys_rpm_holds_back_is_a_429_not_too_long(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The key's rpm of 1 is spent by the refused try (the upstream received it): the shorter
    retry is never sent, and the caller is told to wait (429), not that its input is too long."""
    router = await start_router(one_key(fake.base_url, {"backend": "memory"}, 0, rpm=1))
    async with sdk_on(router, start_edge) as sdk:
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.responses.create(
                model="chain", instructions=INSTRUCTIONS, input=LONG, truncation="auto"
            )
    assert limited.value.response.headers.get("retry-after") is not None
    assert bodies(fake) == [400]


async def test_a_request_too_large_for_the_keys_tpm_is_a_429_not_cut(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """OpenAI's 429 "Request too large … tokens per min" is a rate limit, as OpenAI's own
    `truncation: auto` leaves it: no turn is left out for it, and the caller is told so."""
    fake.state.set_scenario(Scenario(status=429, error_body=TPM_TOO_LARGE))
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.responses.create(
            model="chain", instructions=INSTRUCTIONS, input=LONG, truncation="auto"
        )
    assert "tokens per min" in limited.value.message
    assert [len(call.body["messages"]) for call in fake.state.calls()] == [6, 6, 6]  # whole


async def test_a_responses_upstream_is_asked_to_truncate_itself(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A deployment on OpenAI's Responses API gets the caller's `truncation: "auto"` as it was
    asked: the upstream fits its window (one call), nothing is cut by the router."""
    async with sdk_on(await start_router(on_responses(fake.base_url)), start_edge) as sdk:
        raw = await sdk.responses.with_raw_response.create(
            model="chain", instructions=INSTRUCTIONS, input=LONG, truncation="auto"
        )
    response = Response.model_validate(raw.http_response.json())
    assert (response.output_text, response.truncation) == ("Echo: what now", "auto")
    assert "x-switchboard-truncated-messages" not in raw.headers
    [call] = fake.state.calls(path="/responses")
    assert call.body["truncation"] == "auto"
