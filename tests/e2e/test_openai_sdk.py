"""What a user sees: the official `openai` SDK → the edge → the router → the fake upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import orjson
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.e2e.stream_harness import StartEdge


async def test_chat(sdk: openai.AsyncOpenAI) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=[{"role": "user", "content": "hello world"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion.system_fingerprint == "fp_fake"  # an unmodelled field, passed through
    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"


async def test_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="chain",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


async def test_failover_is_invisible(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "Echo: hi"
    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.headers["x-switchboard-attempts"] == "2"


async def test_bad_request_keeps_the_upstream_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    error = {
        "message": "bad temperature",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }
    fake.state.set_scenario(Scenario(status=400, error_body={"error": error}))
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": "hi"}], temperature=9
        )
    assert caught.value.status_code == 400
    assert caught.value.body == error


async def test_unknown_model_and_rate_limit_map_to_sdk_exceptions(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        await sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.code == "model_not_found"

    fake.state.set_scenario(Scenario.rate_limited(retry_after="9"))
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "9"


async def test_embeddings_and_models(sdk: openai.AsyncOpenAI) -> None:
    result = await sdk.embeddings.create(model="embedder", input=["a", "b"])
    assert [len(d.embedding) for d in result.data] == [8, 8]
    models = [m.id async for m in sdk.models.list()]
    assert {"chain", "embedder", "alpha/model-a"} <= set(models)


async def test_an_embedding_batch_larger_than_a_request_may_be(sdk: openai.AsyncOpenAI) -> None:
    """The answer's limit is not the request's: 1,100 × 2,048 values travel as ~18 MB of
    doubles from router to edge, past the 16 MiB every request is held to."""
    texts = [f"chunk {i}" for i in range(1100)]
    # ~40 MB of JSON made, parsed and written by four processes: more than the fixture's 10 s
    # on a loaded two-core machine, so this one call may take a minute. The raw response: the
    # SDK's model construction of 2.25 M floats alone takes ~4 s of CPU and tests nothing of ours.
    raw = await sdk.with_options(timeout=60).embeddings.with_raw_response.create(
        model="embedder", input=texts, dimensions=2048, encoding_format="float"
    )
    data = orjson.loads(raw.http_response.content)["data"]
    assert [len(e["embedding"]) for e in data] == [2048] * 1100
    assert [e["index"] for e in data] == list(range(1100))


async def test_every_answer_has_a_request_id_the_sdk_reads(sdk: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    given = await sdk.chat.completions.create(
        model="chain", messages=messages, extra_headers={"x-request-id": "req-caller-7"}
    )
    assert given._request_id == "req-caller-7"  # the caller's own comes back
    first = await sdk.chat.completions.create(model="chain", messages=messages)
    second = await sdk.chat.completions.create(model="chain", messages=messages)
    assert first._request_id and second._request_id and first._request_id != second._request_id
    with pytest.raises(openai.NotFoundError) as caught:  # errors too
        await sdk.chat.completions.create(model="no-such-model", messages=messages)
    assert caught.value.request_id


async def test_every_answer_says_how_long_it_took_as_openai_does(
    router: RouterHandle, start_edge: StartEdge, fake: FakeUpstream
) -> None:
    """`openai-processing-ms`: from the request's arrival to its answer's headers."""
    clock = ManualClock()
    edge = await start_edge(router, clock=clock)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:

        async def took() -> str:
            messages: list[Any] = [{"role": "user", "content": "hi"}]
            raw = await client.chat.completions.with_raw_response.create(
                model="chain", messages=messages
            )
            return raw.headers["openai-processing-ms"]

        fake.state.hold()
        call = asyncio.create_task(took())
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the call upstream")
        clock.advance(1.25)
        fake.state.release()
        answered = await call
        listed = await client.models.with_raw_response.list()
    assert answered == "1250"
    assert listed.headers["openai-processing-ms"] == "0"


async def test_bounded_fields_sent_as_null_are_unset(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The SDK sends a `None` argument as JSON null, which OpenAI reads as unset: so does the
    router, which holds these fields to its ceilings (null exceeds none of them)."""
    answer = await sdk.chat.completions.create(
        model="chain",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=None,
        max_completion_tokens=None,
        n=None,
    )
    assert answer.choices[0].message.content == "Echo: hi"
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    assert not {"max_tokens", "max_completion_tokens", "n"} & record.body.keys()


async def test_an_encoding_format_openai_has_not_is_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Every deployment kind gives floats or base64: another format is no silent float list."""
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.embeddings.create(model="embedder", input="x", encoding_format="hex")  # type: ignore[arg-type]
    assert caught.value.param == "encoding_format"
    assert "'float', 'base64'" in caught.value.message
    assert fake.state.last(path="/embeddings") is None


async def test_embedding_options_sent_as_null_are_unset(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    result = await sdk.embeddings.create(
        model="embedder", input="x", extra_body={"dimensions": None, "user": None}
    )
    assert len(result.data[0].embedding) > 0
    record = fake.state.last(path="/embeddings")
    assert record is not None
    assert not {"dimensions", "user"} & record.body.keys()
