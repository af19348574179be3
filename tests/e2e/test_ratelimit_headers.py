"""OpenAI's `x-ratelimit-*` headers as an SDK user reads them (`with_raw_response`): real router
(on a ManualClock: the sliding minute moves only when the test moves it), the edge under
uvicorn, the fake upstream. The resets are read back with the parser the router uses for
OpenAI's own headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clients import chat_params_from_openai
from router_service.clock import ManualClock
from router_service.engine._tokens import estimate_chat_tokens
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.providers._classify import _parse_duration
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client, guarded_config

RPM_KEY = "sk-rpm-0123456789"
TOKENS_KEY = "sk-tokens-0123456789"
FREE_KEY = "sk-free-0123456789"
TPM = 5000
WINDOW_START = 1_700_000_040.0  # a fixed minute's first instant
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
REQUESTS = ("limit-requests", "remaining-requests", "reset-requests")
TOKENS = ("limit-tokens", "remaining-tokens", "reset-tokens")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=WINDOW_START)


@pytest.fixture
async def edge(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, clock: ManualClock
) -> Edge:
    config = guarded_config(
        fake.base_url,
        client("rpm", RPM_KEY, rpm=3),
        client("tokens", TOKENS_KEY, rpm=100, tpm=TPM),
        client("free", FREE_KEY),
    )
    return await start_edge(await start_router(config, clock=clock))


@pytest.fixture
async def sdks(edge: Edge) -> AsyncIterator[dict[str, openai.AsyncOpenAI]]:
    made = {
        name: openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
        )
        for name, key in (("rpm", RPM_KEY), ("tokens", TOKENS_KEY), ("free", FREE_KEY))
    }
    yield made
    for sdk in made.values():
        await sdk.close()


def limits(headers: Mapping[str, str], names: tuple[str, ...]) -> list[str | None]:
    return [headers.get(f"x-ratelimit-{name}") for name in names]


def reset_s(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(f"x-ratelimit-reset-{name}")
    return None if value is None else _parse_duration(value)


async def test_remaining_requests_go_down_by_one_and_reset_parses_back(
    sdks: dict[str, openai.AsyncOpenAI], clock: ManualClock
) -> None:
    chat = sdks["rpm"].chat.completions.with_raw_response
    first = await chat.create(model="chain", messages=HI)
    assert limits(first.headers, REQUESTS) == ["3", "2", "2m0s"]
    assert first.parse().choices[0].message.content == "Echo: hi"
    clock.advance(30)
    second = await chat.create(model="chain", messages=HI, stream=True)  # headers before chunks
    assert limits(second.headers, REQUESTS) == ["3", "1", "1m0s"]
    assert "".join([c.choices[0].delta.content or "" async for c in second.parse() if c.choices])
    third = await chat.create(model="chain", messages=HI)
    assert limits(third.headers, REQUESTS)[:2] == ["3", "0"]
    assert reset_s(third.headers, "requests") == 50.0  # 3 fade to 2 a third into the next minute
    for answer in (first, second, third):
        assert limits(answer.headers, TOKENS) == [None, None, None]  # no tpm, no token headers

    with pytest.raises(openai.RateLimitError) as caught:
        await chat.create(model="chain", messages=HI)
    refused = caught.value.response.headers
    assert limits(refused, REQUESTS)[:2] == ["3", "0"]
    assert reset_s(refused, "requests") == int(refused["retry-after-ms"]) / 1000 == 50.0
    assert refused["retry-after"] == "50"
    with pytest.raises(openai.RateLimitError) as streamed:  # a stream is refused alike
        await chat.create(model="chain", messages=HI, stream=True)
    assert limits(streamed.value.response.headers, REQUESTS)[:2] == ["3", "0"]

    clock.advance(50)  # waiting the reset is enough
    again = await chat.create(model="chain", messages=HI)
    assert limits(again.headers, REQUESTS)[:2] == ["3", "0"]


async def test_tokens_remaining_counts_the_request_estimate(
    sdks: dict[str, openai.AsyncOpenAI],
) -> None:
    body = {"model": "chain", "messages": HI, "max_tokens": 200}
    estimate = estimate_chat_tokens(chat_params_from_openai(body)[0])
    raw = await sdks["tokens"].chat.completions.with_raw_response.create(
        model="chain", messages=HI, max_tokens=200
    )
    assert limits(raw.headers, REQUESTS)[:2] == ["100", "99"]
    assert limits(raw.headers, TOKENS)[:2] == [str(TPM), str(TPM - estimate)]
    reset = reset_s(raw.headers, "tokens")
    assert reset is not None and 60 < reset <= 60 + 60 / estimate + 0.001
    used = raw.parse().usage
    assert used is not None and 0 < used.total_tokens < estimate
    stream = await sdks["tokens"].chat.completions.with_raw_response.create(
        model="chain", messages=HI, max_tokens=200, stream=True
    )
    # The first call settled to its usage before the second was counted with its estimate.
    assert stream.headers["x-ratelimit-remaining-tokens"] == str(TPM - used.total_tokens - estimate)
    assert [c async for c in stream.parse()]


async def test_every_route_the_router_counts_says_it(sdks: dict[str, openai.AsyncOpenAI]) -> None:
    sdk = sdks["tokens"]
    legacy = await sdk.completions.with_raw_response.create(model="chain", prompt="hi")
    assert limits(legacy.headers, REQUESTS)[:2] == ["100", "99"]
    several = await sdk.completions.with_raw_response.create(model="chain", prompt=["a", "b"])
    assert limits(several.headers, REQUESTS)[:2] == ["100", "97"]  # the tighter of the two
    embedded = await sdk.embeddings.with_raw_response.create(model="embedder", input="hi")
    assert limits(embedded.headers, TOKENS)[0] == str(TPM)
    assert limits(embedded.headers, REQUESTS)[:2] == ["100", "96"]
    answered = await sdk.responses.with_raw_response.create(model="chain", input="hi")
    assert limits(answered.headers, REQUESTS)[:2] == ["100", "95"]
    streamed = await sdk.responses.with_raw_response.create(model="chain", input="hi", stream=True)
    assert limits(streamed.headers, REQUESTS)[:2] == ["100", "94"]
    assert [event async for event in streamed.parse()]


async def test_a_client_without_limits_gets_no_ratelimit_headers(
    sdks: dict[str, openai.AsyncOpenAI],
) -> None:
    chat = sdks["free"].chat.completions.with_raw_response
    for stream in (False, True):
        raw = await chat.create(model="chain", messages=HI, stream=stream)
        assert raw.headers["x-switchboard-deployment"]
        assert not [name for name in raw.headers if name.startswith("x-ratelimit-")]


async def test_a_call_that_fails_after_it_was_counted_says_where_its_caller_stands(
    sdks: dict[str, openai.AsyncOpenAI], fake: FakeUpstream
) -> None:
    # Every deployment answers 500: the call was admitted and counted, then failed. Its error
    # carries the standing, as OpenAI's errors carry their headers; an unlimited caller's not.
    fake.state.set_scenario(Scenario(status=500))
    chat = sdks["rpm"].chat.completions
    with pytest.raises(openai.APIStatusError) as failed:
        await chat.create(model="chain", messages=HI)
    assert failed.value.status_code >= 500
    assert limits(failed.value.response.headers, REQUESTS) == ["3", "2", "2m0s"]
    with pytest.raises(openai.APIStatusError) as streamed:
        await chat.create(model="chain", messages=HI, stream=True)
    assert limits(streamed.value.response.headers, REQUESTS)[:2] == ["3", "1"]
    with pytest.raises(openai.APIStatusError) as free:
        await sdks["free"].chat.completions.create(model="chain", messages=HI)
    assert not [name for name in free.value.response.headers if name.startswith("x-ratelimit-")]
