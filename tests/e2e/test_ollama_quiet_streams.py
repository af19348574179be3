"""Ollama API streams while the answer is quiet (an upstream thinking with its reasoning hidden,
`think: false`, or just slow): lines keep coming, each an object an ollama client reads (an
empty `message.content`, `done: false`), so that a proxy's idle timeout does not cut the
stream; Ollama's clients parse every line as JSON, so no other keep-alive will do."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import ollama
import orjson

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

HANG_GUARD_S = 10.0  # what a broken stream would wait: a loaded machine's heartbeats come sooner


async def _read_quiet(lines: Any, fake: FakeUpstream, empty: Any, count: int) -> list[Any]:
    """The lines read until `count` lines `empty` (of no text) came while the upstream was held;
    then the upstream is released."""
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the stream held")
    read, quiet = [], 0
    while quiet < count:
        line = orjson.loads(await asyncio.wait_for(anext(lines), HANG_GUARD_S))
        read.append(line)
        quiet += empty(line)
    fake.state.release()
    return read


async def test_a_quiet_chat_stream_writes_empty_lines_a_client_reads(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    # A frozen clock: the stall window never ends the held stream; heartbeats every 10 ms.
    config = base_config(fake.base_url, streams={"heartbeat_s": 0.01})
    router = await start_router(config, clock=ManualClock())
    edge = await start_edge(router)
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    body = {"model": "chain", "messages": [{"role": "user", "content": "one two three"}]}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=HANG_GUARD_S) as http:
        async with http.stream("POST", "/api/chat", json=body) as answer:
            lines = answer.aiter_lines()
            quiet = await _read_quiet(lines, fake, _empty_message, 3)
            rest = [orjson.loads(line) async for line in lines if line]
    for line in [*quiet, *rest]:  # each line one the ollama client takes
        ollama.ChatResponse.model_validate(line)
    whole = "".join(line["message"]["content"] for line in [*quiet, *rest])
    assert whole.endswith("one two three") and rest[-1]["done"] is True


async def test_a_quiet_generate_stream_writes_empty_responses(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    config = base_config(fake.base_url, streams={"heartbeat_s": 0.01})
    router = await start_router(config, clock=ManualClock())
    edge = await start_edge(router)
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    body = {"model": "chain", "prompt": "one two three"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=HANG_GUARD_S) as http:
        async with http.stream("POST", "/api/generate", json=body) as answer:
            lines = answer.aiter_lines()
            quiet = await _read_quiet(lines, fake, _empty_response, 2)
            rest = [orjson.loads(line) async for line in lines if line]
    for line in [*quiet, *rest]:
        ollama.GenerateResponse.model_validate(line)
    whole = "".join(line["response"] for line in [*quiet, *rest])
    assert whole.endswith("one two three") and rest[-1]["done"] is True


def _empty_message(line: Any) -> bool:
    return line["done"] is False and line["message"] == {"role": "assistant", "content": ""}


def _empty_response(line: Any) -> bool:
    return line["done"] is False and line["response"] == "" and "thinking" not in line
