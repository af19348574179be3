"""The OpenAI options the fake upstream honours as OpenAI does: `n` choices, `stop` sequences
and `logprobs` / `top_logprobs`, plain and streamed."""

from __future__ import annotations

import httpx

from .helpers import chat_body, parse, split_events


async def test_n_stop_and_logprobs(client: httpx.AsyncClient) -> None:
    body = chat_body("one two three", n=2, stop=[" three", "zzz"], logprobs=True, top_logprobs=2)
    data = (await client.post("/chat/completions", json=body)).json()
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert {c["message"]["content"] for c in data["choices"]} == {"Echo: one two"}
    [entry, *_] = data["choices"][0]["logprobs"]["content"]
    assert (entry["token"], entry["logprob"]) == ("Echo: ", -0.25)
    assert [t["token"] for t in entry["top_logprobs"]] == ["Echo: ", "alt1"]
    assert data["usage"]["completion_tokens"] == 2 * 3  # every choice counts
    plain = (await client.post("/chat/completions", json=chat_body("hi"))).json()
    assert plain["choices"][0]["logprobs"] is None and len(plain["choices"]) == 1


async def test_a_stream_carries_every_choice_and_each_pieces_logprobs(
    client: httpx.AsyncClient,
) -> None:
    body = chat_body("a b", n=2, logprobs=True, stream=True)
    raw = (await client.post("/chat/completions", json=body)).content
    chunks = [parse(e) for e in split_events(raw)[:-1]]
    texts = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
            if choice["delta"].get("content"):
                [entry] = choice["logprobs"]["content"]
                assert entry["token"] == choice["delta"]["content"]
                assert entry["top_logprobs"] == []  # top_logprobs not asked: none
    assert texts == {0: "Echo: a b", 1: "Echo: a b"}
