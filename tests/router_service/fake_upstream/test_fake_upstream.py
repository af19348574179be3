"""Healthy-path behaviour of the fake upstream: OpenAI wire format, records, control, lifecycle."""

from __future__ import annotations

import asyncio
import base64
import struct
from pathlib import Path

import httpx
import openai
import pytest

from router_service.fake_upstream import (
    CallRecord,
    FakeUpstream,
    FakeUpstreamState,
    Scenario,
    create_app,
    serve,
)

from .helpers import EventReader, chat_body, parse, split_events

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


async def test_chat_completion_echoes_last_user_message(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    body = chat_body("hello big world", x_router_hint="abc", temperature=0.2)
    body["messages"].insert(0, {"role": "system", "content": "be nice"})
    resp = await client.post("/chat/completions", json=body)

    assert resp.status_code == 200
    data = resp.json()
    assert data["id"].startswith("chatcmpl-fake-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-4o-mini"
    assert data["system_fingerprint"] == "fp_fake"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Echo: hello big world"
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}

    (record,) = fake.state.calls()
    assert (record.key, record.model, record.path, record.stream) == (
        "k1",
        "gpt-4o-mini",
        "/v1/chat/completions",
        False,
    )
    assert record.status == 200
    assert record.completed and record.finished and not record.client_disconnected
    assert record.outcome == "ok"
    assert record.scenario is None
    assert record.body == body
    assert record.extra_fields == {"x_router_hint": "abc"}
    assert fake.state.in_flight == 0


async def test_content_parts_are_joined_and_missing_key_is_empty(fake: FakeUpstream) -> None:
    parts = [
        {"type": "text", "text": "one"},
        {"type": "image_url"},
        {"type": "text", "text": "two"},
    ]
    body = {"model": "m", "messages": [{"role": "user", "content": parts}]}
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        resp = await http.post("/chat/completions", json=body)
    assert resp.json()["choices"][0]["message"]["content"] == "Echo: one two"
    assert fake.state.calls()[0].key == ""


async def test_tool_call_only_when_scenario_asks_and_last_message_not_tool(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    plain = await client.post("/chat/completions", json=chat_body(tools=TOOLS))
    assert plain.json()["choices"][0]["message"]["content"] == "Echo: hello world"

    fake.state.set_scenario(Scenario(tool_call=True))
    resp = await client.post("/chat/completions", json=chat_body(tools=TOOLS))
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_fake_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"},
        }
    ]

    followup = chat_body(tools=TOOLS)
    followup["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": choice["message"]["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_fake_1", "content": "sunny"},
    ]
    answer = await client.post("/chat/completions", json=followup)
    assert answer.json()["choices"][0]["finish_reason"] == "stop"


async def test_stream_wire_format_with_usage(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    body = chat_body("a b c", stream=True, stream_options={"include_usage": True})
    resp = await client.post("/chat/completions", json=body)

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    raw_events = split_events(resp.content)
    assert raw_events[-1] == b"[DONE]"
    chunks = [parse(e) for e in raw_events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert {c["created"] for c in chunks} == {chunks[0]["created"]}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [c["choices"][0]["delta"]["content"] for c in chunks[1:5]]
    assert words == ["Echo: ", "a ", "b ", "c"]
    assert chunks[5]["choices"][0]["delta"] == {}
    assert chunks[5]["choices"][0]["finish_reason"] == "stop"
    assert chunks[6]["choices"] == []
    assert chunks[6]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert len(chunks) == 7

    record = await fake.state.wait_for(lambda: fake.state.last(path="/chat/completions"))
    assert record.stream and record.completed and record.chunks_sent == len(raw_events)


async def test_stream_without_usage_and_exact_chunk_count(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(chunks=40))
    resp = await client.post("/chat/completions", json=chat_body("hi", stream=True))
    events = split_events(resp.content)
    chunks = [parse(e) for e in events[:-1]]
    content = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert len(content) == 40
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

    full = await client.post("/chat/completions", json=chat_body("hi"))
    assert full.json()["choices"][0]["message"]["content"] == "".join(content)


async def test_stream_tool_call(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.state.set_scenario(Scenario(tool_call=True))
    resp = await client.post("/chat/completions", json=chat_body(tools=TOOLS, stream=True))
    chunks = [parse(e) for e in split_events(resp.content)[:-1]]
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:3]]
    assert calls[0]["id"] == "call_fake_1"
    assert calls[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"]["arguments"] for c in calls) == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_openai_sdk_chat_stream_and_embeddings(fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="k1", max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "ping pong"}]
        )
        assert completion.choices[0].message.content == "Echo: ping pong"

        stream = await sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "ping pong"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = chunk.usage or usage
        assert text == "Echo: ping pong"
        assert usage is not None and usage.total_tokens == 5

        # The SDK requests base64 embeddings by default and decodes them itself.
        emb = await sdk.embeddings.create(model="text-embedding-3-small", input="same text")
        assert len(emb.data[0].embedding) == 8
    assert fake.state.count(key="k1") == 3


async def test_embeddings_are_deterministic(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    body = {"model": "emb", "input": ["alpha beta", "gamma"], "dimensions": 5}
    first = (await client.post("/embeddings", json=body)).json()
    second = (await client.post("/embeddings", json=body)).json()

    assert first == second
    assert first["object"] == "list"
    assert first["model"] == "emb"
    assert [d["index"] for d in first["data"]] == [0, 1]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 5 for d in first["data"])
    assert first["data"][0]["embedding"] != first["data"][1]["embedding"]
    assert first["usage"] == {"prompt_tokens": 3, "total_tokens": 3}

    single = (await client.post("/embeddings", json={"model": "emb", "input": "gamma"})).json()
    assert len(single["data"][0]["embedding"]) == 8
    tokens = (await client.post("/embeddings", json={"model": "emb", "input": [[1, 2, 3]]})).json()
    assert tokens["usage"]["prompt_tokens"] == 3

    b64 = {"model": "emb", "input": "gamma", "encoding_format": "base64"}
    encoded = (await client.post("/embeddings", json=b64)).json()["data"][0]["embedding"]
    decoded = list(struct.unpack("<8f", base64.b64decode(encoded)))
    assert decoded == single["data"][0]["embedding"]

    bad = await client.post("/embeddings", json={"model": "emb", "input": {"x": 1}})
    assert bad.status_code == 400


async def test_models_list_and_retrieve(client: httpx.AsyncClient) -> None:
    state = FakeUpstreamState(models=["m-one", "m-two"])
    async with FakeUpstream(state) as fake, httpx.AsyncClient(base_url=fake.base_url) as http:
        listed = (await http.get("/models")).json()
        assert listed["object"] == "list"
        assert [m["id"] for m in listed["data"]] == ["m-one", "m-two"]
        assert listed["data"][0] == {
            "id": "m-one",
            "object": "model",
            "created": listed["data"][0]["created"],
            "owned_by": "fake",
        }
        assert (await http.get("/models/anything")).json()["id"] == "anything"
        # Unlisted models are still accepted by the other endpoints.
        chat = await http.post("/chat/completions", json=chat_body(model="not-listed"))
        assert chat.status_code == 200


async def test_invalid_requests_are_recorded_as_bad_request(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario.server_error())  # must not be consumed by a broken request
    resp = await client.post("/chat/completions", content=b"{not json")
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    no_model = await client.post("/chat/completions", json={"messages": []})
    assert no_model.status_code == 500  # faults apply before validation, like a real provider
    records = fake.state.calls()
    assert [r.outcome for r in records] == ["bad_request", "error_status"]
    assert records[0].scenario is None


async def test_control_endpoints(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as ctl:
        rule = {"key": "k1", "model": "*", "scenario": {"kind": "rate_limited", "times": 1}}
        put = await ctl.put("/_fake/scenarios", json=rule)
        assert put.status_code == 200
        assert put.json()["rules"][0]["scenario"]["status"] == 429

        limited = await client.post("/chat/completions", json=chat_body(model="a"))
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        ok = await client.post("/chat/completions", json=chat_body(model="b"))
        assert ok.status_code == 200
        assert (await ctl.get("/_fake/scenarios")).json() == {"rules": []}  # used up

        counters = (await ctl.get("/_fake/counters")).json()
        assert counters["by_key"] == {"k1": 2}
        assert counters["by_model"] == {"a": 1, "b": 1}
        assert counters["by_key_model"] == {"k1|a": 1, "k1|b": 1}
        assert counters["in_flight"] == 0
        assert counters["client_disconnects"] == 0
        assert [r["status"] for r in counters["records"]] == [429, 200]
        assert "body" not in counters["records"][0]

        bad = await ctl.put("/_fake/scenarios", json={"scenario": {"no_such_field": 1}})
        assert bad.status_code == 400
        await ctl.put("/_fake/scenarios", json=[{"scenario": {"status": 503}}, {"model": "x"}])
        assert len((await ctl.get("/_fake/scenarios")).json()["rules"]) == 2
        await ctl.delete("/_fake/scenarios", params={"model": "x"})
        assert len((await ctl.get("/_fake/scenarios")).json()["rules"]) == 1
        assert (await ctl.delete("/_fake/scenarios")).json() == {"rules": []}

        await ctl.put("/_fake/scenarios", json={"scenario": {"status": 503}})
        assert (await ctl.post("/_fake/reset")).json() == {"ok": True}
        assert fake.state.count() == 0
        assert fake.state.scenarios.rules() == []
    assert (await client.post("/chat/completions", json=chat_body())).status_code == 200


async def test_records_are_bounded_but_counters_are_exact() -> None:
    state = FakeUpstreamState(max_records=2)
    async with FakeUpstream(state) as fake, httpx.AsyncClient(base_url=fake.base_url) as http:
        for _ in range(3):
            await http.post("/chat/completions", json=chat_body())
    assert [r.seq for r in state.records] == [2, 3]
    assert state.counters()["total"] == 3
    assert state.by_model["gpt-4o-mini"] == 3


async def test_wait_for_times_out_with_clear_message() -> None:
    state = FakeUpstreamState()
    with pytest.raises(TimeoutError, match=r"waiting for 1 finished call.*total calls=0"):
        await state.wait_for_count(1, timeout=0.05)


async def test_aclose_cancels_stalled_handlers_and_leaves_no_tasks() -> None:
    before = asyncio.all_tasks()
    fake = FakeUpstream()
    await fake.start()
    fake.state.set_scenario(Scenario.stall(), model="slow")
    fake.state.set_scenario(Scenario(stall_after_chunks=2), model="half")
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=5.0) as http:
        stalled = asyncio.create_task(http.post("/chat/completions", json=chat_body(model="slow")))
        async with http.stream(
            "POST", "/chat/completions", json=chat_body(model="half", stream=True)
        ) as streaming:
            reader = EventReader(streaming)
            assert len(await reader.take(2)) == 2
            await fake.state.wait_for(lambda: fake.state.in_flight == 2)
            await fake.aclose()
            with pytest.raises(httpx.TransportError):
                await reader.take()
        with pytest.raises(httpx.TransportError):
            await stalled
    await fake.aclose()  # idempotent

    records: list[CallRecord] = fake.state.calls()
    assert [r.outcome for r in records] == ["shutdown", "shutdown"]
    assert all(r.finished and not r.client_disconnected for r in records)
    assert fake.state.in_flight == 0
    assert asyncio.all_tasks() - before == set()


async def test_create_app_serves_with_plain_runner() -> None:
    state = FakeUpstreamState()
    app = create_app(state)
    from aiohttp import web

    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with httpx.AsyncClient() as http:
            resp = await http.get(f"http://127.0.0.1:{port}/v1/models")
        assert resp.status_code == 200
        assert state.count(path="/v1/models") == 1
    finally:
        await runner.cleanup()


async def test_serve_loads_scenarios_file_and_stops_on_cancel(tmp_path: Path) -> None:
    rules = tmp_path / "scenarios.yaml"
    rules.write_text(
        "- key: bad\n  model: '*'\n  scenario: {kind: invalid_key_openai}\n"
        "- model: slow-model\n  scenario: {latency_ms: 1}\n",
        encoding="utf-8",
    )
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[FakeUpstream] = loop.create_future()
    server = asyncio.create_task(serve("127.0.0.1", 0, str(rules), on_ready=ready.set_result))
    fake = await asyncio.wait_for(ready, 15.0)
    try:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            resp = await http.post(
                "/chat/completions", json=chat_body(), headers={"Authorization": "Bearer bad"}
            )
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_api_key"
        assert len(fake.state.scenarios.rules()) == 2
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


async def test_a_rule_naming_a_text_is_removed_over_http_by_its_text(fake: FakeUpstream) -> None:
    # DELETE /_fake/scenarios?key=&model= removed only a rule naming no text: one naming a
    # text (PUT with "text") could not be removed alone.
    async with httpx.AsyncClient(base_url=fake.url) as ctl:
        rules = [{"text": "two", "scenario": {"status": 400}}, {"scenario": {"status": 503}}]
        await ctl.put("/_fake/scenarios", json=rules)
        left = (await ctl.delete("/_fake/scenarios", params={"text": "two"})).json()["rules"]
    assert [(rule["text"], rule["scenario"]["status"]) for rule in left] == [("*", 503)]
