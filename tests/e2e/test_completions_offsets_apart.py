"""A streamed legacy completion's `text_offset` when a character's bytes fall in two chunks: an
upstream that sends several tokens a chunk (vLLM with a stream interval, a server that batches)
ends one chunk on a token of part of an emoji (`\\xf0\\x9f`, no text yet) and opens the next
on its rest (`\\x98\\x80 `). The rest was read alone, two bytes of no character (two U+FFFD),
so every later token of that chunk sat one character too far; it completes the character the
last chunk began, as in a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest

from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.providers.test_error_body_bound import (
    LoopbackUpstream,
    config,
    read_request,
)


def _entry(token: str, raw: bytes) -> dict[str, Any]:
    return {"token": token, "logprob": -0.5, "bytes": list(raw), "top_logprobs": []}


# (content, logprob entries) a chunk: "a 😀 b", the emoji's bytes split across the two.
CHUNKS = [
    ("a ", [_entry("a ", b"a "), _entry("\\xf0\\x9f", b"\xf0\x9f")]),
    ("\U0001f600 b", [_entry("\\x98\\x80 ", b"\x98\x80 "), _entry("b", b"b")]),
]


class SplitEmoji(LoopbackUpstream):
    """A loopback OpenAI-format upstream streaming CHUNKS, then its finish."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            said: list[tuple[str, list[dict[str, Any]], str | None]] = [
                *((content, entries, None) for content, entries in CHUNKS),
                ("", [], "stop"),
            ]
            for content, entries, finish in said:
                choice = {
                    "index": 0,
                    "delta": {"content": content} if content else {},
                    "logprobs": {"content": entries} if entries else None,
                    "finish_reason": finish,
                }
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1}
                chunk |= {"model": "m", "choices": [choice]}
                writer.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[SplitEmoji]:
    split = SplitEmoji()
    yield split
    await split.stop()


async def test_a_character_split_across_chunks_moves_the_offsets_once(
    upstream: SplitEmoji, start_router: StartRouter, start_edge: StartEdge
) -> None:
    edge = await start_edge(await start_router(config(await upstream.start(), "httpx")))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        chunks = await sdk.completions.create(model="chain", prompt="x", logprobs=0, stream=True)
        parts = [c.choices[0] async for c in chunks if c.choices]
    text = "".join(part.text for part in parts)
    logprobs = [part.logprobs for part in parts if part.logprobs is not None]
    tokens = [token for lp in logprobs for token in lp.tokens or []]
    offsets = [at for lp in logprobs for at in lp.text_offset or []]
    assert text == "a \U0001f600 b"
    assert tokens == ["a ", "\\xf0\\x9f", "\\x98\\x80 ", "b"]
    assert offsets == [0, 2, 2, 4]  # the emoji starts at 2; "b" at 4, after it and a space
