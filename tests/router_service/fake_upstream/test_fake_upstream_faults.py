"""Fault injection: error statuses, wrapped errors, stalls, truncation, resets, times, matching."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from router_service.fake_upstream import CallRecord, FakeUpstream, Scenario

from .helpers import EventReader, chat_body, parse, split_events


async def _finished(fake: FakeUpstream) -> CallRecord:
    """The latest call once its handler is over (whatever way it ended)."""

    def last_finished() -> CallRecord | None:
        record = fake.state.last()
        return record if record is not None and record.finished else None

    return await fake.state.wait_for(last_finished)


async def test_rate_limited_with_retry_after(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="2"))
    resp = await client.post("/chat/completions", json=chat_body(stream=True))
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "2"
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "rate_limit_error",
        "rate_limit_exceeded",
        None,
    )
    assert isinstance(error["message"], str)
    record = await _finished(fake)
    assert (record.status, record.outcome, record.completed) == (429, "error_status", True)


async def test_bare_retry_after_implies_429(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(retry_after="7", headers={"x-ratelimit-remaining": "0"}))
    resp = await client.post("/chat/completions", json=chat_body())
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(fake: FakeUpstream, client: httpx.AsyncClient, status: int) -> None:
    fake.state.set_scenario(Scenario.server_error(status))
    resp = await client.post("/embeddings", json={"model": "e", "input": "x"})
    assert resp.status_code == status
    assert resp.json()["error"]["type"] == "server_error"


async def test_invalid_key_gemini_and_openai_styles(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario.invalid_key(), key="k1")
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k2")

    gemini = await client.post("/chat/completions", json=chat_body())
    assert gemini.status_code == 400
    assert gemini.json() == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
        }
    }
    oai = await client.post(
        "/chat/completions", json=chat_body(), headers={"Authorization": "Bearer k2"}
    )
    assert oai.status_code == 401
    error = oai.json()["error"]
    assert error["message"].startswith("Incorrect API key provided: sk-")
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


async def test_quota_exhausted_and_custom_error(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario.quota_exhausted(), model="q")
    fake.state.set_scenario(Scenario(status=418, error_body={"detail": "teapot"}), model="t")
    quota = await client.post("/chat/completions", json=chat_body(model="q"))
    assert quota.status_code == 429
    assert quota.json()["error"]["code"] == "insufficient_quota"
    custom = await client.post("/chat/completions", json=chat_body(model="t"))
    assert (custom.status_code, custom.json()) == (418, {"detail": "teapot"})


async def test_openai_sdk_sees_rate_limit_error(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="0"))
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="k1", max_retries=0) as sdk:
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )


async def test_wrapped_error_in_200_body(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    inner = {"message": "overloaded", "type": "server_error", "code": "overloaded"}
    fake.state.set_scenario(Scenario(wrapped_error=inner))
    resp = await client.post("/chat/completions", json=chat_body())
    assert resp.status_code == 200
    assert resp.json() == {"error": inner}
    assert (await _finished(fake)).outcome == "wrapped_error"


async def test_wrapped_error_at_chunk_five(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    inner = {"message": "mid-stream failure", "type": "server_error", "code": None}
    fake.state.set_scenario(Scenario(wrapped_error={"error": inner}, wrapped_error_at_chunk=5))
    resp = await client.post("/chat/completions", json=chat_body("a b c d e f", stream=True))
    assert resp.status_code == 200
    events = split_events(resp.content)
    assert len(events) == 5
    assert parse(events[4]) == {"error": inner}
    assert all("choices" in parse(e) for e in events[:4])
    assert b"[DONE]" not in resp.content
    record = await _finished(fake)
    assert (record.chunks_sent, record.outcome) == (5, "wrapped_error")


async def test_stall_before_first_byte_client_timeout_is_a_disconnect(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario.stall())
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/chat/completions", json=chat_body(), timeout=0.2)
    record = await _finished(fake)
    assert record.client_disconnected
    assert (record.status, record.completed, record.outcome) == (None, False, "client_disconnected")
    assert fake.state.client_disconnects == 1


async def test_finite_stall_then_normal_answer(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(stall_before_first_byte=True, stall_before_ms=60))
    started = time.monotonic()
    resp = await client.post("/chat/completions", json=chat_body())
    assert time.monotonic() - started >= 0.06
    assert resp.json()["choices"][0]["message"]["content"] == "Echo: hello world"


async def test_latency_and_chunk_interval(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(latency_ms=50, chunk_interval_ms=10))
    started = time.monotonic()
    resp = await client.post("/chat/completions", json=chat_body("a b", stream=True))
    elapsed = time.monotonic() - started
    # 50ms to the first chunk plus 10ms between each of the 5 following events.
    assert elapsed >= 0.05 + 5 * 0.01
    assert split_events(resp.content)[-1] == b"[DONE]"


async def test_stall_after_chunks_then_client_closes(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    body = chat_body("one two three", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as resp:
        events = await EventReader(resp).take(2)
        assert [parse(e)["choices"][0]["delta"].get("content") for e in events] == ["", "Echo: "]
        await fake.state.wait_for(
            lambda: fake.state.count() == 1 and fake.state.calls()[0].outcome == "stalled"
        )
    # Leaving the block closes the half-read response, i.e. the client hangs up.
    record = await _finished(fake)
    assert record.client_disconnected and not record.completed
    assert record.chunks_sent == 2


async def test_held_after_chunks_waits_mid_stream_until_released(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    body = chat_body("one two three", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as resp:
        reader = EventReader(resp)
        assert len(await reader.take(2)) == 2
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the stream held")
        record = fake.state.calls()[0]
        assert (record.chunks_sent, record.finished) == (2, False)  # under way, and stays so
        fake.state.release()
        rest = await reader.take()
    assert rest[-1] == b"[DONE]" and fake.state.held == 0
    record = await _finished(fake)
    assert (record.completed, record.outcome, record.chunks_sent) == (True, "ok", 2 + len(rest))


async def test_stepped_chunks_send_one_event_a_release(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(stepped_chunks=2))
    body = chat_body("one two three", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as resp:
        reader = EventReader(resp)
        for sent in (1, 2):
            assert len(await reader.take(1)) == 1
            await fake.state.wait_for(lambda: fake.state.held == 1, what="the next event held")
            assert fake.state.calls()[0].chunks_sent == sent  # one event a step, no more
            fake.state.release()
        rest = await reader.take()  # the events past the steps follow unheld
    assert rest[-1] == b"[DONE]" and fake.state.held == 0
    record = await _finished(fake)
    assert (record.completed, record.chunks_sent) == (True, 2 + len(rest))


async def test_truncate_after_chunks(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=3))
    resp = await client.post("/chat/completions", json=chat_body("a b c d", stream=True))
    assert resp.status_code == 200
    chunks = [parse(e) for e in split_events(resp.content)]
    assert len(chunks) == 3
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert b"[DONE]" not in resp.content
    record = await _finished(fake)
    assert (record.outcome, record.chunks_sent, record.client_disconnected) == (
        "truncated",
        3,
        False,
    )


async def test_truncation_never_includes_finish_chunk(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=100))
    resp = await client.post("/chat/completions", json=chat_body("a", stream=True))
    chunks = [parse(e) for e in split_events(resp.content)]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Echo: ", "a"]


async def test_reset_before_response(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(reset_before_response=True))
    with pytest.raises(httpx.TransportError):
        await client.post("/chat/completions", json=chat_body())
    record = await _finished(fake)
    assert (record.status, record.outcome, record.client_disconnected) == (None, "reset", False)
    # The server itself is fine afterwards.
    fake.state.clear_scenarios()
    assert (await client.post("/chat/completions", json=chat_body())).status_code == 200


async def test_reset_after_chunks(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(reset_after_chunks=3))
    body = chat_body("a b c d e", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        reader = EventReader(resp)
        with pytest.raises(httpx.TransportError):
            await reader.take()
    record = await _finished(fake)
    assert (record.status, record.chunks_sent, record.outcome) == (200, 3, "reset")
    assert not record.completed and not record.client_disconnected


async def test_times_is_used_up_then_next_rule_applies(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(status=500))
    fake.state.set_scenario(Scenario.rate_limited(times=3), key="k1")
    statuses = [
        (await client.post("/chat/completions", json=chat_body())).status_code for _ in range(4)
    ]
    assert statuses == [429, 429, 429, 500]
    fake.state.clear_scenarios()
    assert (await client.post("/chat/completions", json=chat_body())).status_code == 200
    assert [r.scenario is not None for r in fake.state.calls()] == [True] * 4 + [False]


async def test_matching_precedence(fake: FakeUpstream) -> None:
    state = fake.state
    state.set_scenario(Scenario(status=501))  # (*, *)
    state.set_scenario(Scenario(status=502), model="m")  # (*, m)
    state.set_scenario(Scenario(status=503), key="k")  # (k, *)
    state.set_scenario(Scenario(status=504), key="k", model="m")  # (k, m)

    async def status_for(key: str, model: str) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as http:
            return (await http.post("/chat/completions", json=chat_body(model=model))).status_code

    assert await status_for("k", "m") == 504
    assert await status_for("k", "other") == 503
    assert await status_for("other", "m") == 502
    assert await status_for("other", "other") == 501
    state.remove_scenario(key="k", model="m")
    assert await status_for("k", "m") == 503
    assert state.count(key="k") == 3
    assert state.count(model="m") == 3


async def test_non_stream_body_faults(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=1), model="trunc")
    fake.state.set_scenario(Scenario(reset_after_chunks=1), model="reset")
    fake.state.set_scenario(Scenario(stall_after_chunks=0), model="stall")

    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/chat/completions", json=chat_body(model="trunc"))
    assert (await _finished(fake)).outcome == "truncated"

    with pytest.raises(httpx.TransportError):
        await client.post("/chat/completions", json=chat_body(model="reset"))
    assert (await _finished(fake)).outcome == "reset"

    # Headers arrive, the body never does: a read timeout after the response started.
    async with client.stream(
        "POST", "/chat/completions", json=chat_body(model="stall"), timeout=0.2
    ) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            await resp.aread()
    record = await _finished(fake)
    assert (record.status, record.client_disconnected) == (200, True)


async def test_held_answers_wait_until_released(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.hold()
    calls = [
        asyncio.create_task(client.post("/chat/completions", json=chat_body(f"q{i}")))
        for i in range(2)
    ]
    await fake.state.wait_for(lambda: fake.state.held == 2)  # both arrived, neither answered
    assert fake.state.in_flight == 2 and not any(call.done() for call in calls)
    async with httpx.AsyncClient(base_url=fake.url) as ctl:  # or over HTTP, from elsewhere
        assert (await ctl.post("/_fake/release")).json() == {"released": 2}
        await ctl.post("/_fake/hold")
    for call in calls:
        assert (await call).status_code == 200
    late = asyncio.create_task(client.post("/chat/completions", json=chat_body("late")))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    fake.state.release()
    assert (await late).status_code == 200
    assert fake.state.held == 0 and fake.state.in_flight == 0


async def test_a_held_call_whose_client_leaves_is_let_go(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.hold()
    call = asyncio.create_task(client.post("/chat/completions", json=chat_body()))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    call.cancel()
    record = await _finished(fake)
    assert (record.outcome, fake.state.held) == ("client_disconnected", 0)
