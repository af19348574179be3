"""Stop sequences past an upstream's cap (OpenAI's 4, Gemini's 5): the upstream gets the first
that many, the router cuts the answer at the others, in a call and in a stream (which it stops
reading), through the openai SDK and Anthropic's."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.engine._stops import MAX_ENFORCED_STOP_CHARS, MAX_ENFORCED_STOPS
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.conftest import Guarded
from tests.e2e.test_stream_cleanup import back_to, idle_census

pytestmark = pytest.mark.timeout(60)

TEXT = "one two three four ### five six seven eight nine ten eleven twelve"
# Eight stops; the sixth (spanning two of the fake's stream pieces, "four " and "### ") is the
# one the answer holds: past OpenAI's 4 and Gemini's 5.
STOPS = ["<A>", "<B>", "<C>", "<D>", "<E>", "r ##", "<G>", "<H>"]
CUT = "one two three fou"
HELLO: Any = [{"role": "user", "content": "hello"}]
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
CAPS = {"chain": 4, "gem": 5}


def config(fake: FakeUpstream, **alpha: Any) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["providers"]["alpha"] |= alpha
    out["providers"]["gemini"] = {
        "kind": "gemini",
        "base_url": f"{fake.url}/v1beta",
        "keys": ["g-key"],
    }
    out["models"]["gem"] = {"deployments": [{"provider": "gemini", "model": "gemini-2.5-flash"}]}
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def sent_stops(fake: FakeUpstream) -> Any:
    record = fake.state.last()
    assert record is not None
    body = record.body
    return body["stop"] if "stop" in body else body["generationConfig"]["stopSequences"]


@pytest.mark.parametrize("model", ["chain", "gem"])
async def test_a_stop_past_the_cap_cuts_the_answer(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    answer = await sdk.chat.completions.create(model=model, messages=HELLO, stop=STOPS)
    [choice] = answer.choices
    assert choice.message.content == CUT
    assert choice.finish_reason == "stop"
    assert sent_stops(fake) == STOPS[: CAPS[model]]
    assert answer.usage is not None and answer.usage.completion_tokens > 0  # the upstream's


@pytest.mark.parametrize("model", ["chain", "gem"])
async def test_a_stream_ends_at_a_stop_past_the_cap_and_the_upstream_is_closed(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    # Held after 8 pieces until the caller is gone: only the router's cut ends this stream.
    fake.state.set_scenario(Scenario(content=TEXT, held_after_chunks=8))
    stream = await sdk.chat.completions.create(
        model=model,
        messages=HELLO,
        stop=STOPS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == CUT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert usage.completion_tokens > 0 and usage.total_tokens > usage.completion_tokens
    record = fake.state.last()
    assert record is not None
    await fake.state.wait_for(lambda: record.client_disconnected, what="the upstream closed")
    assert not record.completed
    assert sent_stops(fake) == STOPS[: CAPS[model]]


async def test_a_cut_stream_leaves_nothing_behind_and_penalises_no_one(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle
) -> None:
    first = await sdk.chat.completions.create(model="chain", messages=HELLO, stream=True)
    assert [chunk async for chunk in first]  # warm up: lazily started long-lived tasks exist
    baseline = await idle_census(router.server)
    fake.state.set_scenario(Scenario(content=TEXT, held_after_chunks=8))
    stream = await sdk.chat.completions.create(
        model="chain", messages=HELLO, stop=STOPS, stream=True
    )
    content = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert content == CUT
    record = fake.state.last()
    assert record is not None
    await fake.state.wait_for(lambda: record.client_disconnected, what="the upstream closed")
    assert await router.leases_held() == 0
    [stats] = await router.runtime.stats.read(["alpha/model-a"])
    assert stats.failures == 0 and stats.successes >= 2
    await back_to(baseline)


async def test_each_choice_is_cut_and_stops_within_the_cap_are_the_upstreams(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    answer = await sdk.chat.completions.create(model="chain", messages=HELLO, stop=STOPS, n=2)
    assert [c.message.content for c in answer.choices] == [CUT, CUT]
    fake.state.set_scenario(Scenario(content=TEXT))
    within = await sdk.chat.completions.create(model="chain", messages=HELLO, stop=STOPS[:4])
    assert within.choices[0].message.content == TEXT  # none of them in it: nothing cut
    assert sent_stops(fake) == STOPS[:4]


async def test_the_anthropic_entrance_names_the_stop_the_router_matched(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    message = await claude.messages.create(
        model="chain", max_tokens=100, messages=HELLO, stop_sequences=STOPS
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "r ##"
    assert [block.text for block in message.content if block.type == "text"] == [CUT]


async def test_a_providers_max_stop_sequences_is_its_cap(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    edge = await start_edge(await start_router(config(fake, max_stop_sequences=2)))
    fake.state.set_scenario(Scenario(content=TEXT))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        answer = await sdk.chat.completions.create(model="chain", messages=HELLO, stop=STOPS)
    assert answer.choices[0].message.content == CUT
    assert sent_stops(fake) == STOPS[:2]


async def test_the_stop_cuts_before_the_answer_guardrails_screen(
    guarded_sdk: Guarded, fake: FakeUpstream
) -> None:
    """A key after the stop is never the caller's: the stream ends at the stop, not blocked."""
    rule = {"name": "keys", "detect": ["api_key"], "action": "block", "apply_to": ["response"]}
    _, sdk = await guarded_sdk([rule])
    fake.state.set_scenario(Scenario(content=f"one two three four ### {AWS_KEY} and more"))
    stream = await sdk.chat.completions.create(
        model="chain", messages=HELLO, stop=STOPS, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CUT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


async def test_the_fake_refuses_more_stops_than_openai_takes(fake: FakeUpstream) -> None:
    import httpx

    body = {"model": "m", "messages": HELLO, "stop": STOPS[:5]}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an "
        "array with length 5 instead."
    )


async def test_more_stops_than_the_router_enforces_are_a_400_not_a_stalled_router(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Each chunk is matched against every stop past the cap: a body of thousands (OpenAI
    refuses more than 4) would hold the router's loop on every chunk of the stream."""
    many = [f"<{i}>" for i in range(4 + MAX_ENFORCED_STOPS + 1)]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="chain", messages=HELLO, stop=many, stream=True)
    assert "stop" in caught.value.message and str(MAX_ENFORCED_STOPS) in caught.value.message
    assert fake.state.last() is None  # nothing reached the upstream
    long = [*STOPS[:4], "x" * (MAX_ENFORCED_STOP_CHARS + 1)]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="chain", messages=HELLO, stop=long)
    assert str(MAX_ENFORCED_STOP_CHARS) in caught.value.message
    fake.state.set_scenario(Scenario(content=TEXT))
    most = [*STOPS, *(f"<{i}>" for i in range(MAX_ENFORCED_STOPS + 4 - len(STOPS)))]
    answer = await sdk.chat.completions.create(model="chain", messages=HELLO, stop=most)
    assert answer.choices[0].message.content == CUT  # as many as it enforces: served


async def test_empty_stops_past_the_cap_are_not_sent_either(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """An empty stop matches nothing, so none is left to enforce; the list sent is still cut to
    the cap (OpenAI refuses 5 with a 400, empty or not)."""
    fake.state.set_scenario(Scenario(content=TEXT))
    answer = await sdk.chat.completions.create(model="chain", messages=HELLO, stop=[*STOPS[:4], ""])
    assert answer.choices[0].message.content == TEXT
    assert sent_stops(fake) == STOPS[:4]


async def test_a_cut_streams_usage_counts_the_reasoning_the_caller_asked_not_to_see(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Hidden from the caller (`include_reasoning: false`), the reasoning was still generated
    and billed: the estimate of a stream cut at a stop counts it."""
    reasoning = "thinking it over " * 30
    fake.state.set_scenario(Scenario(content=TEXT, reasoning=reasoning))
    stream = await sdk.chat.completions.create(
        model="chain",
        messages=HELLO,
        stop=STOPS,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"include_reasoning": False},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CUT
    assert not any(
        "reasoning_content" in (c.choices[0].delta.model_extra or {}) for c in chunks if c.choices
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens >= len(reasoning) // 4


async def test_a_cut_answer_keeps_the_logprobs_of_the_text_it_shows(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The fake gives one entry per word: those whose token begins before the cut are kept
    ("four " too: the cut went through it), those of the text past it are dropped."""
    fake.state.set_scenario(Scenario(content=TEXT))
    answer = await sdk.chat.completions.create(
        model="chain", messages=HELLO, stop=STOPS, logprobs=True, top_logprobs=1
    )

    [choice] = answer.choices
    assert choice.message.content == CUT
    assert choice.logprobs is not None and choice.logprobs.content is not None
    assert [e.token for e in choice.logprobs.content] == SHOWN_TOKENS
    assert all(len(e.top_logprobs) == 1 for e in choice.logprobs.content)


SHOWN_TOKENS = ["one ", "two ", "three ", "four "]


async def test_a_cut_stream_keeps_the_logprobs_of_the_text_it_shows(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A stream holds each entry back with its text and releases it with it: the entries the
    caller reads are those of the call, each with the text it came with or before it."""
    fake.state.set_scenario(Scenario(content=TEXT))
    stream = await sdk.chat.completions.create(
        model="chain", messages=HELLO, stop=STOPS, logprobs=True, stream=True
    )
    chunks = [c async for c in stream if c.choices]

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == CUT
    tokens, shown = [], ""
    for chunk in chunks:
        shown += chunk.choices[0].delta.content or ""
        entries = chunk.choices[0].logprobs.content if chunk.choices[0].logprobs else None
        tokens += [e.token for e in entries or []]
        # No entry ahead of its text, no text out without its entry.
        assert len("".join(tokens[:-1])) < len(shown) or not tokens
        assert len("".join(tokens)) >= len(shown)
    assert tokens == SHOWN_TOKENS


EMOJI_TEXT = "one two three \N{SLIGHTLY SMILING FACE} four ### five six seven"
# The emoji's two tokens are its bytes split, written escaped ("\\xf0\\x9f"): longer than
# the one character they make, which the cut is counted in.
EMOJI_TOKENS = ["one ", "two ", "three ", "\\xf0\\x9f", "\\x99\\x82 ", "four "]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_cut_answer_keeps_the_logprobs_of_an_emoji_split_over_tokens(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    """Tokens of part of a character (an emoji a byte-level tokenizer split) are placed by
    their `bytes`, not by the length of their escaped `token`: every entry of the text shown
    is kept, the call's and the stream's alike."""
    fake.state.set_scenario(Scenario(content=EMOJI_TEXT))
    asked: Any = {"model": "chain", "messages": HELLO, "stop": STOPS, "logprobs": True}
    if stream:
        chunks = [c async for c in await sdk.chat.completions.create(**asked, stream=True)]
        choices = [c.choices[0] for c in chunks if c.choices]
        text = "".join(c.delta.content or "" for c in choices)
        entries = [e for c in choices if c.logprobs for e in c.logprobs.content or []]
    else:
        [choice] = (await sdk.chat.completions.create(**asked)).choices
        text = choice.message.content or ""
        entries = choice.logprobs.content or [] if choice.logprobs else []

    assert text == "one two three \N{SLIGHTLY SMILING FACE} fou"
    assert [e.token for e in entries] == EMOJI_TOKENS
