"""Streams end to end: the official `openai` SDK (or raw httpx) → the edge → the router → the fake
upstream, with small windows. Every stream ends on the wire as OpenAI's do, and every ending
(normal, stall, truncation, upstream error, disconnect, deadline) releases what it held."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.stream_harness import (
    BODY,
    MESSAGES,
    OpenStack,
    data_chunks,
    error_of,
    events,
    sdk_read,
    stream_call,
)
from tests.helpers import advance_until_done

T = TypeVar("T")


async def test_stream_bytes_are_openais(open_stack: OpenStack, fake: FakeUpstream) -> None:
    stack = await open_stack()
    body = {**BODY, "stream_options": {"include_usage": True}}

    status, raw, headers = await stack.wire(body)

    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    *data, done = events(raw)
    assert done == b"data: [DONE]"
    # Only `data:` lines of compact JSON: no `id:`/`event:` lines, no comments on a busy stream.
    assert all(e.startswith(b"data: {") and b"\n" not in e for e in data)
    chunks = [orjson.loads(e[len(b"data: ") :]) for e in data]
    assert all(e == b"data: " + orjson.dumps(c) for e, c in zip(data, chunks, strict=True))
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    *content, finish, usage = chunks
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in content) == (
        "Echo: tell me a story"
    )
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 5


# ---- heartbeats ---------------------------------------------------------------------------


async def test_heartbeats_on_an_idle_upstream_and_the_sdk_reads_past_them(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    # The stall window is a hang guard: the upstream is quiet only until a heartbeat is heard.
    stack = await open_stack(heartbeat_s=0.05, stall_s=60)
    # Quiet after the first content (role and it are relayed together) until the test hears a
    # heartbeat: not a real-time gap, which a loaded machine's slow relay could fill first.
    fake.state.set_scenario(Scenario(chunks=3, held_after_chunks=2))
    received = b""
    async with stack.http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        assert response.status_code == 200
        async for part in response.aiter_bytes():
            received += part
            quiet = received.count(b"data: {") == 2  # role and first content: held after
            if quiet and received.endswith(b": keepalive\n\n"):
                fake.state.release()  # heard in the quiet: the rest may come now

    parts = events(received)
    assert parts[-1] == b"data: [DONE]"
    keepalives = [i for i, e in enumerate(parts) if e == b": keepalive"]
    data = [i for i, e in enumerate(parts) if e.startswith(b"data: {")]
    assert len(data) == 5  # role and first content (relayed together), 2 more, the finish
    assert any(data[1] < k < data[2] for k in keepalives), parts  # the quiet was filled

    fake.state.set_scenario(Scenario(chunks=3, chunk_interval_ms=150))
    chunks, error = await sdk_read(stack)
    assert error is None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    await stack.settled()


async def test_heartbeats_go_on_after_the_finish_until_the_streams_end(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """The upstream sends its finish and goes quiet before `[DONE]`: the caller still hears
    `: keepalive` (a proxy's idle timeout would cut it otherwise) until the end comes."""
    stack = await open_stack(heartbeat_s=0.05, stall_s=60)  # a hang guard: see above
    fake.state.set_scenario(Scenario(chunks=3, held_after_chunks=5))  # role, 3 texts, finish
    received = b""
    async with stack.http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        async for part in response.aiter_bytes():
            received += part
            if b'"finish_reason":"stop"' in received and received.endswith(b": keepalive\n\n"):
                fake.state.release()  # heard after the finish: the end may come now
    parts = events(received)
    finish = next(i for i, e in enumerate(parts) if b'"finish_reason":"stop"' in e)
    assert b": keepalive" in parts[finish + 1 : -1]
    assert parts[-1] == b"data: [DONE]"
    await stack.settled()


async def test_heartbeats_go_on_while_stalled_until_the_stall_window_ends(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    # The stall window on the router's clock, moved past it at each heartbeat heard once the
    # upstream is stalled (the last chunk may still be on its way to the router then). How
    # many heartbeats a window holds at most is the guard's own test (test_stream_guard_reader).
    clock = ManualClock()
    stack = await open_stack(heartbeat_s=0.05, stall_s=0.25, clock=clock)
    fake.state.set_scenario(Scenario(chunks=5, stall_after_chunks=3))

    body = b""
    async with stack.http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        async for part in response.aiter_bytes():
            body += part
            if fake.state.calls()[0].outcome == "stalled" and part.endswith(b": keepalive\n\n"):
                clock.advance(0.3)

    parts = events(body)
    *_, last_chunk, error, done = [e for e in parts if e.startswith(b"data: ")]
    assert (error_of(error)["code"], done) == ("stalled", b"data: [DONE]")
    assert b": keepalive" in parts[parts.index(last_chunk) : parts.index(error)]
    await stack.settled()


# ---- failures before the first token: invisible ---------------------------------------------


async def test_stall_before_the_first_byte_fails_over_invisibly(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    # Alpha's window times out on the router's clock, moved once alpha's call is stalled.
    clock = ManualClock()
    stack = await open_stack(first_chunk_s=0.3, heartbeat_s=0.05, clock=clock)
    fake.state.set_scenario(Scenario.stall(), model="model-a")

    async def read() -> tuple[str, list[ChatCompletionChunk]]:
        raw = await stack.sdk.chat.completions.with_raw_response.create(
            model="chain", messages=MESSAGES, stream=True
        )
        return raw.headers["x-switchboard-deployment"], [c async for c in raw.parse()]

    reading = asyncio.ensure_future(read())
    await fake.state.wait_for(lambda: fake.state.calls(model="model-a") != [])
    clock.advance(0.31)
    deployment, chunks = await reading

    assert deployment == "beta/model-b"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: tell me a story"
    assert len({(c.id, c.created) for c in chunks}) == 1
    # A first-chunk timeout moves to the next deployment; the stalled request was closed.
    [stalled] = fake.state.calls(model="model-a")
    await fake.state.wait_for(lambda: stalled.client_disconnected)
    await stack.settled()


async def test_a_stream_that_ends_before_any_content_fails_over_invisibly(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    stack = await open_stack()
    # The role chunk, then a clean end without content or a finish reason.
    fake.state.set_scenario(Scenario(truncate_after_chunks=1), model="model-a")

    raw = await stack.sdk.chat.completions.with_raw_response.create(
        model="chain", messages=MESSAGES, stream=True
    )
    chunks = [c async for c in raw.parse()]

    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: tell me a story"
    assert len(fake.state.calls(model="model-a")) == 1
    await stack.settled()


async def test_no_candidate_left_before_the_first_token_is_an_http_status(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    clock = ManualClock()  # each window ends when moved past it, once its call is stalled
    stack = await open_stack(first_chunk_s=0.2, clock=clock)
    fake.state.set_scenario(Scenario.stall())

    reading = asyncio.ensure_future(
        stack.sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    )
    for tried in (1, 2):
        await fake.state.wait_for(lambda n=tried: len(fake.state.calls()) == n)  # type: ignore[misc]
        clock.advance(0.21)
    with pytest.raises(openai.InternalServerError) as caught:
        await reading

    assert caught.value.status_code == 503  # a real status: the SDK's own retries apply
    assert len(fake.state.calls(path="/chat/completions")) == 2  # one try per deployment
    await stack.settled()


# ---- failures after the first token: one error event, then [DONE] ---------------------------


@pytest.mark.parametrize(
    ("scenario", "error_type", "code"),
    [
        (Scenario(chunks=6, stall_after_chunks=3), "stream_timeout", "stalled"),
        (Scenario(chunks=6, truncate_after_chunks=3), "stream_truncated", "truncated"),
        (Scenario(chunks=6, reset_after_chunks=3), "upstream_error", "upstream_error"),
        (Scenario(chunks=8, wrapped_error_at_chunk=5), "upstream_error", "upstream_error"),
    ],
    ids=["stall", "truncated", "reset", "wrapped-error-in-5th-chunk"],
)
async def test_mid_stream_failure_is_one_error_event_then_done(
    open_stack: OpenStack, fake: FakeUpstream, scenario: Scenario, error_type: str, code: str
) -> None:
    # The stall window on the router's clock, moved only once the upstream is stalled: a
    # loaded machine's slow but live chunk never ends a stream as stalled.
    stalls, clock = scenario.stall_after_chunks is not None, ManualClock()
    stack = await open_stack(stall_s=0.3, heartbeat_s=0.1, clock=clock)
    fake.state.set_scenario(scenario)  # every deployment: the failure is never failed over

    async def ended(reading: Awaitable[T]) -> T:
        """What `reading` (a stream's) gives, the upstream's stall moved past on the clock."""
        running, calls = asyncio.ensure_future(reading), len(fake.state.calls())
        if stalls:
            await fake.state.wait_for(
                lambda: [c.outcome for c in fake.state.calls()[calls:]] == ["stalled"]
            )
            await advance_until_done(clock, 0.5, running, what="the stall window ended it")
        return await running

    status, body, headers = await ended(stack.wire())

    assert status == 200
    assert headers["x-switchboard-deployment"] == "alpha/model-a"
    *data, error, done = events(body)
    assert done == b"data: [DONE]"
    assert error_of(error)["type"] == error_type
    assert error_of(error)["code"] == code
    assert all(b'"error"' not in e for e in data)
    assert body.count(b'"error"') == 1
    assert data_chunks(body)  # the content that had arrived was relayed
    # The upstream request ended: closed by the router (stall) or by the upstream itself.
    record = await fake.state.wait_for(
        lambda: stream_call(fake) if stream_call(fake).finished else None
    )
    if stalls:
        assert record.client_disconnected
    # No silent failover once content was relayed: the one upstream call was the only one.
    assert fake.state.count(path="/chat/completions") == 1

    chunks, raised = await ended(sdk_read(stack))
    assert isinstance(raised, openai.APIError)
    assert chunks
    await stack.settled()


# ---- the caller goes away: everything is released, nobody is penalised ----------------------
