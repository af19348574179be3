"""The response cache as an OpenAI SDK user sees it through the edge: `x-switchboard-cache`
and `Age` on answers, the request header that bypasses or avoids the cache, streams replayed
and shared by identical streams at once, embeddings, and a clear 400 for a header it does not
know."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

MESSAGES: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000_000.0)


@pytest.fixture
async def edge_url(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, clock: ManualClock
) -> str:
    config = base_config(fake.base_url, cache={"enabled": True, "ttl_s": 600})
    router = await start_router(config, clock=clock)
    return (await start_edge(router)).base_url


@pytest.fixture
async def sdk(edge_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{edge_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


async def test_a_repeated_question_is_answered_from_the_cache(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, clock: ManualClock
) -> None:
    create = sdk.chat.completions.with_raw_response.create
    first = await create(model="chain", messages=MESSAGES)
    assert first.headers["x-switchboard-cache"] == "miss"
    assert "age" not in first.headers
    clock.advance(30)
    second = await create(model="chain", messages=MESSAGES)
    assert second.headers["x-switchboard-cache"] == "hit"
    assert second.headers["age"] == "30"
    assert second.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert second.headers["x-switchboard-attempts"] == "0"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().usage == first.parse().usage
    assert len(fake.state.calls()) == 1


async def test_the_caller_bypasses_or_avoids_the_cache(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    create = sdk.chat.completions.with_raw_response.create
    await create(model="chain", messages=MESSAGES)
    fake.state.set_scenario(Scenario(content="fresh"))
    bypass = await create(
        model="chain", messages=MESSAGES, extra_headers={"x-switchboard-cache": "bypass"}
    )
    assert bypass.headers["x-switchboard-cache"] == "bypass"
    assert bypass.parse().choices[0].message.content == "fresh"
    fake.state.set_scenario(Scenario(content="not kept"))
    no_store = {"cache-control": "no-store"}
    off = await create(model="chain", messages=MESSAGES, extra_headers=no_store)
    assert "x-switchboard-cache" not in off.headers
    assert off.parse().choices[0].message.content == "not kept"
    hit = await create(model="chain", messages=MESSAGES)
    assert hit.headers["x-switchboard-cache"] == "hit"
    assert hit.parse().choices[0].message.content == "fresh"


async def test_an_unknown_cache_header_is_a_400(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="chain", messages=MESSAGES, extra_headers={"x-switchboard-cache": "forever"}
        )
    assert refused.value.code == "invalid_header"
    assert refused.value.param == "x-switchboard-cache"


async def streamed(sdk: openai.AsyncOpenAI) -> tuple[str, Any, Any]:
    """A stream's text, usage and headers."""
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in raw.parse():
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    return text, usage, raw.headers


async def test_a_stream_is_replayed_from_the_cache(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    first = await streamed(sdk)
    second = await streamed(sdk)
    assert (first[2]["x-switchboard-cache"], second[2]["x-switchboard-cache"]) == ("miss", "hit")
    assert second[0] == first[0] == "Echo: hello"
    assert second[1] == first[1] is not None
    assert len(fake.state.calls()) == 1


async def test_embeddings_are_answered_from_the_cache(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    create = sdk.embeddings.with_raw_response.create
    first = await create(model="embedder", input=["a", "b"])
    second = await create(model="embedder", input=["a", "b"])
    assert (first.headers["x-switchboard-cache"], second.headers["x-switchboard-cache"]) == (
        "miss",
        "hit",
    )
    assert second.parse().data == first.parse().data
    assert len(fake.state.calls()) == 1


async def test_identical_streams_at_once_share_one_upstream_stream(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        fake.state.hold()
        leader = asyncio.create_task(streamed(client))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the first stream's call")
        (flight,) = router.runtime.cache.stream_flights._open.values()
        follower = asyncio.create_task(streamed(client))
        await flight.wait_until(lambda f: f.followers == 1)
        fake.state.release()
        first, second = await asyncio.gather(leader, follower)
    assert (first[2]["x-switchboard-cache"], second[2]["x-switchboard-cache"]) == ("miss", "hit")
    assert second[2]["x-switchboard-attempts"] == "0"
    assert second[:2] == first[:2] and first[0] == "Echo: hello"
    assert len(fake.state.calls()) == 1


async def test_no_store_wins_over_a_bypass_header(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A caller (or its HTTP library) that says `Cache-Control: no-store` has nothing kept,
    whatever `x-switchboard-cache` asks beside it: the stricter of the two applies."""
    create = sdk.chat.completions.with_raw_response.create
    fake.state.set_scenario(Scenario(content="private"))
    both = {"x-switchboard-cache": "bypass", "cache-control": "no-store"}
    answer = await create(model="chain", messages=MESSAGES, extra_headers=both)
    assert "x-switchboard-cache" not in answer.headers  # off: neither read nor kept
    fake.state.set_scenario(Scenario(content="asked again"))
    again = await create(model="chain", messages=MESSAGES)
    assert again.headers["x-switchboard-cache"] == "miss"
    assert again.parse().choices[0].message.content == "asked again"


async def test_a_no_store_on_a_second_cache_control_line_keeps_nothing(
    edge_url: str, fake: FakeUpstream
) -> None:
    """`Cache-Control` sent on two lines (a proxy adding its own) is one list (RFC 9110): its
    `no-store` keeps the answer out of the cache as on one line."""
    fake.state.set_scenario(Scenario(content="private"))
    body = {"model": "chain", "messages": MESSAGES}
    lines = [("cache-control", "max-age=0"), ("cache-control", "no-store")]
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as http:
        answer = await http.post("/v1/chat/completions", json=body, headers=lines)
        assert answer.status_code == 200
        assert "x-switchboard-cache" not in answer.headers  # off: neither read nor kept
        fake.state.set_scenario(Scenario(content="asked again"))
        again = await http.post("/v1/chat/completions", json=body)
    assert again.headers["x-switchboard-cache"] == "miss"
    assert again.json()["choices"][0]["message"]["content"] == "asked again"


@pytest.mark.parametrize("control", ["max-age=0", "Max-Age=0", "no-transform, max-age=0"])
async def test_max_age_0_asks_for_a_fresh_answer(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, clock: ManualClock, control: str
) -> None:
    """`Cache-Control: max-age=0` (what a browser page's `fetch(…, {cache: "no-cache"})`
    sends, and a reload) takes no answer older than 0 s (RFC 9111 5.2.1.1): a fresh one, kept,
    as `no-cache`; not one kept 30 s ago."""
    create = sdk.chat.completions.with_raw_response.create
    await create(model="chain", messages=MESSAGES)
    clock.advance(30)
    fake.state.set_scenario(Scenario(content="fresh"))
    fresh = await create(model="chain", messages=MESSAGES, extra_headers={"cache-control": control})
    assert fresh.headers["x-switchboard-cache"] == "bypass"
    assert "age" not in fresh.headers
    assert fresh.parse().choices[0].message.content == "fresh"
    kept = await create(model="chain", messages=MESSAGES)
    assert kept.headers["x-switchboard-cache"] == "hit"
    assert kept.parse().choices[0].message.content == "fresh"
    assert len(fake.state.calls()) == 2


# Digits `str.isdigit` takes that `int` refuses: a superscript two (latin-1, as a header is
# read), and more digits than `int` converts (4300).
@pytest.mark.parametrize("age", [b"\xb2", b"9" * 5000], ids=["superscript", "long"])
async def test_a_max_age_int_cannot_read_serves_the_kept_answer(
    edge_url: str, fake: FakeUpstream, age: bytes
) -> None:
    """A `max-age` that is not 0 is not read (README: a kept answer of any age serves it),
    whatever its digits: not a 500 for one `int` cannot read."""
    body = {"model": "chain", "messages": MESSAGES}
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as http:
        await http.post("/v1/chat/completions", json=body)
        fake.state.set_scenario(Scenario(content="not asked"))
        kept = await http.post(
            "/v1/chat/completions", json=body, headers=[(b"cache-control", b"max-age=" + age)]
        )
    assert kept.status_code == 200, kept.text
    assert kept.headers["x-switchboard-cache"] == "hit"
    assert len(fake.state.calls()) == 1


async def test_the_end_user_an_app_names_does_not_split_its_answers(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """`safety_identifier` and `prompt_cache_key` (OpenAI's successors of `user`) name who
    asks, as `user` does, not what is asked: the users of one app share its answers either
    way."""
    create = sdk.chat.completions.with_raw_response.create
    first = await create(model="chain", messages=MESSAGES, safety_identifier="end-user-1")
    assert first.headers["x-switchboard-cache"] == "miss"
    whos: list[dict[str, Any]] = [
        {"safety_identifier": "end-user-2", "prompt_cache_key": "end-user-2"},
        {"prompt_cache_key": "end-user-3"},
        {"user": "end-user-4"},
        {},
    ]
    for who in whos:
        again = await create(model="chain", messages=MESSAGES, **who)
        assert again.headers["x-switchboard-cache"] == "hit", who
    (call,) = fake.state.calls()
    assert call.body["safety_identifier"] == "end-user-1"  # the upstream is still told
    other = await create(model="chain", messages=MESSAGES, extra_body={"top_k": 3})
    assert other.headers["x-switchboard-cache"] == "miss"  # the rest of extra_json is asked
    named = await create(
        model="chain", messages=MESSAGES, extra_body={"top_k": 3}, safety_identifier="end-user-5"
    )
    assert named.headers["x-switchboard-cache"] == "hit"
    assert len(fake.state.calls()) == 2


async def test_a_completion_of_several_prompts_is_a_hit_only_when_each_prompt_is(
    sdk: openai.AsyncOpenAI, clock: ManualClock
) -> None:
    """A legacy completion of several prompts is a call per prompt: its header says `hit` (and
    the oldest part's `Age`) only when every part came from the cache."""
    create = sdk.completions.with_raw_response.create
    assert (await create(model="chain", prompt="hello")).headers["x-switchboard-cache"] == "miss"
    clock.advance(20)
    mixed = await create(model="chain", prompt=["hello", "something new"])
    assert mixed.headers["x-switchboard-cache"] == "miss"
    assert "age" not in mixed.headers
    clock.advance(10)
    cached = await create(model="chain", prompt=["something new", "hello"])
    assert cached.headers["x-switchboard-cache"] == "hit"
    assert cached.headers["age"] == "30"  # "hello"'s, kept first
