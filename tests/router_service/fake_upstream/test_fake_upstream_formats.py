"""The fake upstream speaks every provider's wire format at its real paths, with the one set of
scenario controls: keys from each provider's own auth header, errors in each provider's words."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario

ANTHROPIC_HEADERS = {"x-api-key": "ka", "anthropic-version": "2023-06-01"}
MESSAGES = [{"role": "user", "content": "hello world"}]


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


def sse_events(raw: str) -> list[tuple[str, Any]]:
    """(event name, JSON payload) of a complete SSE body."""
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event", ""), orjson.loads(fields["data"])))
    return events


async def test_gemini_generate_and_stream(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}
    resp = await http.post(
        "/v1beta/models/gem-1:generateContent", json=body, headers={"x-goog-api-key": "kg"}
    )
    data = resp.json()
    assert data["candidates"][0]["content"]["parts"] == [{"text": "Echo: hello world"}]
    assert data["candidates"][0]["finishReason"] == "STOP"
    assert data["usageMetadata"]["candidatesTokenCount"] == 3
    record = fake.state.last()
    assert record is not None and (record.key, record.model) == ("kg", "gem-1")

    resp = await http.post("/v1beta/models/gem-1:streamGenerateContent?alt=sse&key=kq", json=body)
    events = sse_events(resp.text)
    text = "".join(p["text"] for _, e in events for p in e["candidates"][0]["content"]["parts"])
    assert text == "Echo: hello world"
    assert [e["candidates"][0].get("finishReason") for _, e in events][-1] == "STOP"
    record = fake.state.last()
    assert record is not None and record.key == "kq"
    assert record.stream


@pytest.mark.parametrize(
    ("thinking", "thoughts"),
    [
        ({"includeThoughts": True}, "Thinking it over."),
        ({"includeThoughts": True, "thinkingBudget": 0}, None),  # thinking off: none
        ({"thinkingBudget": 512}, None),  # not asked for
    ],
)
async def test_gemini_thoughts_come_when_asked_for(
    http: httpx.AsyncClient, thinking: dict[str, Any], thoughts: str | None
) -> None:
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": thinking},
    }
    data = (await http.post("/v1beta/models/g:generateContent", json=body)).json()
    parts = data["candidates"][0]["content"]["parts"]
    thought = [{"text": thoughts, "thought": True}] if thoughts else []
    assert parts == [*thought, {"text": "Echo: hi"}]
    assert data["usageMetadata"].get("thoughtsTokenCount") == (3 if thoughts else None)
    path = "/v1beta/models/g:streamGenerateContent?alt=sse"
    events = sse_events((await http.post(path, json=body)).text)
    streamed = [p for _, e in events for p in e["candidates"][0]["content"]["parts"]]
    said = [p["text"] for p in streamed if p.get("thought")]
    assert said == (["Thinking ", "it ", "over."] if thoughts else [])
    assert streamed[: len(said)] == [{"text": t, "thought": True} for t in said]


async def test_gemini_streams_with_alt_sse_only(http: httpx.AsyncClient) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    resp = await http.post("/v1beta/models/g:streamGenerateContent", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_gemini_function_responses_must_match_a_call_by_id(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """Gemini 3's matching: calls come with ids, and a result naming no call is refused."""
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"q": 1}))
    question = {"role": "user", "parts": [{"text": "look it up"}]}
    tools = [{"functionDeclarations": [{"name": "lookup"}]}]
    path, headers = "/v1beta/models/g:generateContent", {"x-goog-api-key": "k"}
    resp = await http.post(path, json={"contents": [question], "tools": tools}, headers=headers)
    call = resp.json()["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call["id"].startswith("fc-") and call["name"]

    def history(response_id: str) -> dict[str, Any]:
        result = {"id": response_id, "name": call["name"], "response": {"result": "x"}}
        turns = [{"role": "model", "parts": [{"functionCall": call}]}]
        answer = {"role": "user", "parts": [{"functionResponse": result}]}
        return {"contents": [question, *turns, answer], "tools": tools}

    assert (await http.post(path, json=history(call["id"]), headers=headers)).status_code == 200
    refused = await http.post(path, json=history("fc-other"), headers=headers)
    assert refused.status_code == 400
    assert "fc-other" in refused.json()["error"]["message"]


async def test_gemini_embeddings_and_models(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    one = await http.post(
        "/v1beta/models/e:embedContent",
        json={"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4},
    )
    assert len(one.json()["embedding"]["values"]) == 4
    batch = await http.post(
        "/v1beta/models/e:batchEmbedContents",
        json={"requests": [{"content": {"parts": [{"text": t}]}} for t in ("a", "b")]},
    )
    assert [len(e["values"]) for e in batch.json()["embeddings"]] == [8, 8]
    models = (await http.get("/v1beta/models")).json()["models"]
    assert [m["name"] for m in models] == [f"models/{m}" for m in fake.state.models]


async def test_anthropic_messages(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = {"model": "claude-x", "max_tokens": 10, "messages": MESSAGES}
    data = (await http.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)).json()
    assert data["content"] == [{"type": "text", "text": "Echo: hello world"}]
    assert (data["stop_reason"], data["usage"]["output_tokens"]) == ("end_turn", 3)
    record = fake.state.last()
    assert record is not None and record.key == "ka"

    resp = await http.post("/v1/messages", json={**body, "stream": True}, headers=ANTHROPIC_HEADERS)
    names = [name for name, _ in sse_events(resp.text)]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


THINKING_BODY = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": MESSAGES}


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"x-api-key": "ka"}, {"model": "m", "max_tokens": 1, "messages": MESSAGES}, "version"),
        (ANTHROPIC_HEADERS, {"model": "m", "messages": MESSAGES}, "max_tokens"),
        (  # extended thinking's budget stays under max_tokens
            ANTHROPIC_HEADERS,
            {**THINKING_BODY, "thinking": {"type": "enabled", "budget_tokens": 4096}},
            "must be greater than `thinking.budget_tokens`",
        ),
        (  # and max_tokens under the model's output limit (Opus 4.1: 32000)
            ANTHROPIC_HEADERS,
            {**THINKING_BODY, "model": "claude-opus-4-1-20250805", "max_tokens": 40000},
            "40000 > 32000",
        ),
    ],
)
async def test_anthropic_insists_on_its_required_fields(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any], message: str
) -> None:
    resp = await http.post("/v1/messages", json=body, headers=headers)
    assert resp.status_code == 400
    error = resp.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]


async def test_cohere_chat_stream_and_embed(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    auth = {"Authorization": "Bearer kc"}
    body = {"model": "command-x", "messages": MESSAGES}
    data = (await http.post("/v2/chat", json=body, headers=auth)).json()
    assert data["message"]["content"] == [{"type": "text", "text": "Echo: hello world"}]
    assert data["finish_reason"] == "COMPLETE"
    record = fake.state.last()
    assert record is not None and record.key == "kc"

    resp = await http.post("/v2/chat", json={**body, "stream": True}, headers=auth)
    events = sse_events(resp.text)
    assert (events[0][0], events[-1][0]) == ("message-start", "message-end")
    assert all(name == payload["type"] for name, payload in events)

    embed = await http.post("/v2/embed", json={"model": "e", "texts": ["a"], "output_dimension": 4})
    assert [len(v) for v in embed.json()["embeddings"]["float"]] == [4]


async def test_cloudflare_routes(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    base = "/client/v4/accounts/acc/ai"
    auth = {"Authorization": "Bearer kf"}
    data = (
        await http.post(
            f"{base}/v1/chat/completions",
            json={"model": "@cf/x", "messages": MESSAGES},
            headers=auth,
        )
    ).json()
    assert data["choices"][0]["message"]["content"] == "Echo: hello world"
    record = fake.state.last()
    assert record is not None and record.key == "kf"
    models = (await http.get(f"{base}/models/search")).json()
    assert models["success"] is True
    assert [m["name"] for m in models["result"]] == fake.state.models


@pytest.mark.parametrize(
    ("headers", "params", "key"),
    [({}, {}, "data"), (ANTHROPIC_HEADERS, {}, "data"), ({}, {"page_size": "10"}, "models")],
    ids=["openai", "anthropic", "cohere"],
)
async def test_v1_models_answers_in_the_askers_format(
    http: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], key: str
) -> None:
    data = (await http.get("/v1/models", headers=headers, params=params)).json()
    assert key in data


# (request, expected status, where the words are, the words) per format.
REQUESTS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "gemini": (
        "/v1beta/models/g:generateContent",
        {"contents": [{"parts": [{"text": "x"}]}]},
        {"x-goog-api-key": "bad"},
    ),
    "anthropic": (
        "/v1/messages",
        {"model": "m", "max_tokens": 1, "messages": MESSAGES},
        {**ANTHROPIC_HEADERS, "x-api-key": "bad"},
    ),
    "cohere": ("/v2/chat", {"model": "m", "messages": MESSAGES}, {"Authorization": "Bearer bad"}),
    "cloudflare": (
        "/client/v4/accounts/a/ai/v1/chat/completions",
        {"model": "m", "messages": MESSAGES},
        {"Authorization": "Bearer bad"},
    ),
    "openai": (
        "/v1/chat/completions",
        {"model": "m", "messages": MESSAGES},
        {"Authorization": "Bearer bad"},
    ),
}
INVALID_KEY: dict[str, tuple[int, Callable[[Any], object], object]] = {
    "gemini": (400, lambda b: b["error"]["details"][0]["reason"], "API_KEY_INVALID"),
    "anthropic": (401, lambda b: b["error"]["message"], "invalid x-api-key"),
    "cohere": (401, lambda b: b["message"], "invalid api token"),
    "cloudflare": (401, lambda b: b["errors"][0]["code"], 10000),
    "openai": (401, lambda b: b["error"]["code"], "invalid_api_key"),
}


@pytest.mark.parametrize("fmt", REQUESTS)
async def test_invalid_key_in_each_providers_own_words(
    http: httpx.AsyncClient, fake: FakeUpstream, fmt: str
) -> None:
    fake.state.set_scenario(Scenario.invalid_key(style="native"), key="bad")
    path, body, headers = REQUESTS[fmt]
    resp = await http.post(path, json=body, headers=headers)
    status, words, expected = INVALID_KEY[fmt]
    assert (resp.status_code, words(resp.json())) == (status, expected)


WRAPPED: dict[str, Callable[[Any], object]] = {
    "gemini": lambda b: b["error"]["code"],
    "anthropic": lambda b: (b["type"], b["error"]["code"]),
    "cohere": lambda b: b["error"]["code"],
    "cloudflare": lambda b: (b["success"], b["errors"][0]["code"]),
    "openai": lambda b: b["error"]["code"],
}


@pytest.mark.parametrize("fmt", REQUESTS)
async def test_wrapped_errors_in_each_format(
    http: httpx.AsyncClient, fake: FakeUpstream, fmt: str
) -> None:
    fake.state.set_scenario(Scenario(wrapped_error={"code": 429, "message": "slow down"}))
    path, body, headers = REQUESTS[fmt]
    resp = await http.post(path, json=body, headers=headers)
    assert resp.status_code == 200
    assert WRAPPED[fmt](resp.json()) in (429, ("error", 429), (False, 429))


@pytest.mark.parametrize("fmt", ["anthropic", "gemini", "cohere"])
async def test_default_error_bodies_are_the_providers(
    http: httpx.AsyncClient, fake: FakeUpstream, fmt: str
) -> None:
    fake.state.set_scenario(Scenario.server_error(529 if fmt == "anthropic" else 503))
    path, body, headers = REQUESTS[fmt]
    resp = await http.post(path, json=body, headers=headers)
    data = resp.json()
    if fmt == "anthropic":
        assert (resp.status_code, data["error"]["type"]) == (529, "overloaded_error")
    elif fmt == "gemini":
        assert (resp.status_code, data["error"]["status"]) == (503, "UNAVAILABLE")
    else:
        assert (resp.status_code, data["message"]) == (503, "service unavailable")


async def test_gemini_safety_block(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(blocked="SAFETY"))
    path, body, headers = REQUESTS["gemini"]
    data = (await http.post(path, json=body, headers=headers)).json()
    assert data["promptFeedback"]["blockReason"] == "SAFETY" and "candidates" not in data


def test_native_invalid_key_preset_from_dict() -> None:
    assert Scenario.from_dict({"kind": "invalid_key_native"}) == Scenario.invalid_key(
        style="native"
    )
