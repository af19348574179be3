"""Legacy text completions as a user sees them: the official `openai` SDK's
`client.completions` → the edge's `POST /v1/completions` → the router → the fake upstream (which
speaks chat completions: the prompt reaches it as one user message)."""

from __future__ import annotations

import gc
from typing import Any

import openai
import pytest
from openai.types import Completion

from clients import RouterError
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import OpenStack, StartEdge, data_chunks, error_of, events
from tests.helpers import tracked
from tests.router_service.auth.helpers import client, guarded_config

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}


def upstream_body(fake: FakeUpstream) -> dict[str, Any]:
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    return record.body


def valid(completion: Completion) -> Completion:
    """The SDK builds its models without validating: validate what came, strictly."""
    return Completion.model_validate(completion.model_dump(mode="json"))


async def test_create_is_one_chat_call_with_openais_default_max_tokens(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.completions.with_raw_response.create(model="chain", prompt="hello world")
    completion = valid(raw.parse())
    assert completion.id.startswith("cmpl-") and completion.object == "text_completion"
    [choice] = completion.choices
    assert (choice.text, choice.index, choice.finish_reason) == ("Echo: hello world", 0, "stop")
    assert choice.logprobs is None
    assert completion.model == "model-a"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 3)
    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert raw.headers["x-switchboard-attempts"] == "1"
    assert raw.headers["x-request-id"]
    body = upstream_body(fake)
    assert body["messages"] == [{"role": "user", "content": "hello world"}]
    assert body["max_tokens"] == 16  # OpenAI's legacy default when none is given
    assert "prompt" not in body and "echo" not in body


async def test_options_reach_the_upstream_and_n_stop_shape_the_answer(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    completion = await sdk.completions.create(
        model="chain",
        prompt=["one two three"],  # an array holding one prompt is that prompt
        max_tokens=40,
        temperature=0.5,
        top_p=0.9,
        n=2,
        stop=[" three"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        seed=7,
        user="u-1",
        logit_bias={"50256": -100},
        best_of=2,  # equal to n: nothing to rank
        extra_body={"top_k": 40},  # an OpenAI-compatible server's own option passes through
    )
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "Echo: one two"),
        (1, "Echo: one two"),
    ]
    body = upstream_body(fake)
    expected = {"max_tokens": 40, "temperature": 0.5, "top_p": 0.9, "n": 2, "stop": [" three"]}
    expected |= {"presence_penalty": 0.1, "frequency_penalty": 0.2, "seed": 7, "user": "u-1"}
    expected |= {"logit_bias": {"50256": -100}, "top_k": 40}
    assert {k: body.get(k) for k in expected} == expected
    assert "best_of" not in body


async def test_several_prompts_are_answered_together_in_openais_order(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model="chain", prompt=["one", "two three", "four"], n=2, echo=True, max_tokens=30
    )
    completion = valid(raw.parse())
    # Prompt i's choice j at index i * n + j, as OpenAI orders them; one id for the answer.
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "oneEcho: one"),
        (1, "oneEcho: one"),
        (2, "two threeEcho: two three"),
        (3, "two threeEcho: two three"),
        (4, "fourEcho: four"),
        (5, "fourEcho: four"),
    ]
    chats = [r.body for r in fake.state.calls() if r.path.endswith("/chat/completions")]
    assert sorted(b["messages"][0]["content"] for b in chats) == ["four", "one", "two three"]
    assert all(b["n"] == 2 and b["max_tokens"] == 30 for b in chats)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 1 + 2 + 1  # the three calls' usage added up
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"


async def test_one_failing_prompt_fails_the_request(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="9"))
    gc.collect()
    gc.disable()  # what only a collection would free is then still there to be seen
    try:
        with pytest.raises(openai.RateLimitError):
            await sdk.completions.create(model="chain", prompt=["one", "two"])
        # The edge's error is freed with its request: in a reference cycle (with the frames of
        # its traceback) it held the calls' client and channel, so a stopped edge's health
        # watch stayed open at the router until a garbage collection.
        assert tracked(RouterError) == []
    finally:
        gc.enable()


async def test_echo_prepends_the_prompt(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.completions.create(model="chain", prompt="Say: ", echo=True)
    assert completion.choices[0].text == "Say: Echo: Say: "


async def test_logprobs_in_the_legacy_shape(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    completion = valid(await sdk.completions.create(model="chain", prompt="a b", logprobs=2))
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens == ["Echo: ", "a ", "b"]
    assert logprobs.token_logprobs == [-0.25, -0.5, -0.75]
    assert logprobs.text_offset == [0, 6, 8]
    assert logprobs.top_logprobs == [
        {"Echo: ": -0.25, "alt1": -1.25},
        {"a ": -0.5, "alt1": -1.5},
        {"b": -0.75, "alt1": -1.75},
    ]
    body = upstream_body(fake)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    # Up to chat's bound of 20, beyond OpenAI's legacy 5 (SillyTavern asks for 10).
    wide = await sdk.completions.create(model="chain", prompt="a b", logprobs=10)
    assert wide.choices[0].logprobs is not None and wide.choices[0].logprobs.top_logprobs
    assert [len(top) for top in wide.choices[0].logprobs.top_logprobs] == [10, 10, 10]


async def test_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.completions.create(
        model="chain",
        prompt="one two three",
        stream=True,
        stream_options={"include_usage": True},
        echo=True,
    )
    chunks = [chunk async for chunk in stream]  # (finish_reason: null while running, as OpenAI)
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("cmpl-")
    assert {c.object for c in chunks} == {"text_completion"}
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "one two threeEcho: one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


async def test_created_is_read_from_the_edges_clock(
    router: RouterHandle, start_edge: StartEdge
) -> None:
    """`created` is a time the edge writes: on its clock, as a Responses answer's `created_at`."""
    edge = await start_edge(router, clock=ManualClock(start=1_234_567_890.5))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        completion = await client.completions.create(model="chain", prompt="hi")
        assert completion.created == 1_234_567_890
        stream = await client.completions.create(model="chain", prompt="hi", stream=True)
        assert {chunk.created async for chunk in stream} == {1_234_567_890}


async def test_top_logprobs_always_hold_the_sampled_token(sdk: openai.AsyncOpenAI) -> None:
    """OpenAI's legacy `logprobs`: "The API will always return the logprob of the sampled
    token, so there may be up to logprobs+1 elements": `logprobs: 0` is the sampled token's
    alone (the chat call's `top_logprobs: 0` lists none), in a call and in a stream."""
    completion = await sdk.completions.create(model="chain", prompt="a b", logprobs=0)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.top_logprobs == [{"Echo: ": -0.25}, {"a ": -0.5}, {"b": -0.75}]
    stream = await sdk.completions.create(model="chain", prompt="a b", logprobs=0, stream=True)
    streamed = [c.choices[0].logprobs async for c in stream if c.choices and c.choices[0].text]
    assert [lp.top_logprobs for lp in streamed if lp is not None] == [
        [{"Echo: ": -0.25}],
        [{"a ": -0.25}],
        [{"b": -0.25}],
    ]


async def test_streamed_logprobs_count_offsets_across_chunks(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.completions.create(model="chain", prompt="a b", logprobs=0, stream=True)
    logprobs = [c.choices[0].logprobs async for c in stream if c.choices and c.choices[0].text]
    assert [(lp.tokens, lp.text_offset) for lp in logprobs if lp is not None] == [
        (["Echo: "], [0]),
        (["a "], [6]),
        (["b"], [8]),
    ]


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"prompt": ["one", "two"], "stream": True}, "prompt"),
        ({"prompt": ["p"] * 21}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2], [3]]}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x", "suffix": "end"}, "suffix"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "echo": True, "logprobs": 1}, "echo"),
        ({"prompt": "x", "logprobs": 21}, "logprobs"),
        ({"prompt": "x", "max_tokens": "many"}, "max_tokens"),
        # Chat's name for the bound: it rode on beside the default `max_tokens: 16`, and an
        # upstream given both refuses them.
        ({"prompt": "x", "extra_body": {"max_completion_tokens": 64}}, "max_completion_tokens"),
        # A text completion answers text: a tool call had nowhere to go (it was dropped, the
        # choice's text empty, its finish_reason `tool_calls`, which this API does not have).
        ({"prompt": "x", "extra_body": {"tools": [WEATHER]}}, "tools"),
        ({"prompt": "x", "extra_body": {"functions": [WEATHER["function"]]}}, "functions"),
        ({"prompt": "x", "extra_body": {"tool_choice": "required"}}, "tool_choice"),
        (
            {"prompt": "x", "extra_body": {"messages": [{"role": "user", "content": "y"}]}},
            "messages",
        ),
        # Chat's audio output: a text completion's choice has no place for the audio (OpenAI
        # refuses both as unrecognized arguments of this API).
        ({"prompt": "x", "extra_body": {"modalities": ["text", "audio"]}}, "modalities"),
        ({"prompt": "x", "extra_body": {"audio": {"voice": "alloy", "format": "wav"}}}, "audio"),
    ],
    ids=[
        "several-prompts-streamed",
        "21-prompts",
        "tokens",
        "token-lists",
        "number",
        "suffix",
        "best_of",
        "echo-logprobs",
        "logprobs-21",
        "max_tokens",
        "max_completion_tokens",
        "tools",
        "functions",
        "tool_choice",
        "messages",
        "modalities",
        "audio",
    ],
)
async def test_what_a_chat_model_cannot_do_is_a_400_naming_the_field(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, options: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.completions.create(model="chain", **options)
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert fake.state.calls() == []


async def test_an_unknown_model_and_an_upstream_failure_are_the_sdks_typed_errors(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.completions.create(model="no-such-model", prompt="hi")
    fake.state.set_scenario(Scenario.rate_limited(retry_after="9"))
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.completions.create(model="chain", prompt="hi", stream=True)
    assert caught.value.response.headers["retry-after"] == "9"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
async def test_failover_stays_invisible(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    raw = await sdk.completions.with_raw_response.create(model="chain", prompt="hi", stream=stream)
    parsed = raw.parse()
    if isinstance(parsed, Completion):
        text = parsed.choices[0].text
    else:
        text = "".join([c.choices[0].text async for c in parsed if c.choices])
    assert text == "Echo: hi"
    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.headers["x-switchboard-attempts"] == "2"


async def test_a_failure_mid_stream_is_one_error_event_then_done(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    stack = await open_stack()
    fake.state.set_scenario(Scenario(chunks=6, reset_after_chunks=3))  # every deployment
    body = {"model": "chain", "prompt": "tell me a story", "stream": True}
    answer = await stack.http.post("/v1/completions", json=body)
    assert answer.status_code == 200
    *_, error, done = events(answer.content)
    assert done == b"data: [DONE]"
    assert error_of(error)["type"] == "upstream_error"
    assert [c["object"] for c in data_chunks(answer.content)] == ["text_completion"] * 2
    stream = await stack.sdk.completions.create(model="chain", prompt="again", stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    await stack.settled()


async def test_n_is_bounded_by_the_router_for_chat_and_legacy_completions(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # n multiplies what the upstream generates and bills (a legacy request: prompts × n): an
    # unbounded n (OpenAI's own limit is 128) let one call cost hundreds of answers.
    with pytest.raises(openai.BadRequestError) as completions:
        await sdk.completions.create(model="chain", prompt=["a", "b"], n=9)
    with pytest.raises(openai.BadRequestError) as chat:
        await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": "hi"}], n=1000
        )
    for refused, n in ((completions.value, 9), (chat.value, 1000)):
        assert refused.param == "n"
        assert f"Invalid value for 'n': {n}. It must be between 1 and 8." in refused.message
    assert fake.state.count() == 0
    answered = await sdk.completions.create(model="chain", prompt="a", n=8)  # the default bound
    assert len(answered.choices) == 8


async def test_each_prompt_counts_against_the_callers_rpm(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    # Several prompts are as many router calls, each admitted (and counted) on its own: a
    # batch cannot pass the caller's rpm by riding in one HTTP request.
    config = guarded_config(fake.base_url, client("app", "sk-app-rpm-0123", rpm=4))
    edge = await start_edge(await start_router(config))
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-app-rpm-0123", max_retries=0
    )
    async with sdk:
        await sdk.completions.create(model="chain", prompt=["a", "b", "c"])
        with pytest.raises(openai.RateLimitError):
            await sdk.completions.create(model="chain", prompt=["d", "e"])
    assert fake.state.count(path="/chat/completions") <= 4


@pytest.mark.parametrize("stream", [False, True])
async def test_text_offsets_are_characters_of_the_text(
    sdk: openai.AsyncOpenAI, stream: bool
) -> None:
    """A token of part of a character (its `token` the escaped bytes, `\\xf0\\x9f`: eight
    characters of no text) moves `text_offset` by what it adds to the text, read from its
    `bytes`: each offset is where the token's text starts in `text`, in a call and a stream."""
    if stream:
        chunks = await sdk.completions.create(
            model="chain", prompt="\U0001f600 b", logprobs=0, stream=True
        )
        parts = [c.choices[0] async for c in chunks if c.choices and c.choices[0].logprobs]
    else:
        completion = await sdk.completions.create(model="chain", prompt="\U0001f600 b", logprobs=0)
        parts = completion.choices
    logprobs = [part.logprobs for part in parts if part.logprobs is not None]
    text = "".join(part.text for part in parts)
    offsets = [at for lp in logprobs for at in lp.text_offset or []]
    tokens = [token for lp in logprobs for token in lp.tokens or []]
    assert text == "Echo: \U0001f600 b"
    assert tokens == ["Echo: ", "\\xf0\\x9f", "\\x98\\x80 ", "b"], tokens
    assert offsets == [0, 6, 6, 8]  # the emoji starts at 6; "b" at 8, after it and a space
