"""Shared by the end-to-end stream tests: a full stack (fake upstream, router, edge, SDK) with
small windows, and readers of the SSE wire format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import orjson

from clients import RouterClient
from clients.switchboard.v1 import chat_pb2, router_service_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._state import CallRecord
from tests.conftest import HANG_GUARD, RouterHandle, base_config
from tests.helpers import eventually
from tests.http_edge.harness import Edge

StartEdge = Callable[..., Awaitable[Edge]]
MESSAGES: list[Any] = [{"role": "user", "content": "tell me a story"}]
BODY: dict[str, Any] = {"model": "chain", "messages": MESSAGES, "stream": True}


def chat_params(text: str = "tell me a story") -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    return chat_pb2.ChatParams(model="chain", messages=[message])


def stream_config(
    fake_url: str,
    *,
    first_chunk_s: float = 60.0,
    stall_s: float = 60.0,
    heartbeat_s: float = 5.0,
    beta_first_chunk_s: float | None = None,
) -> dict[str, Any]:
    """`beta_first_chunk_s`: the fallback's own first-chunk window, so that a test timing
    alpha out does not race beta's answer against the same short window. The windows' defaults
    are hang guards (on the system clock a live stream must never reach them, however loaded
    the machine), the connect timeout too (`HANG_GUARD`: at its 5 s default, a worker starved
    while connecting failed alpha over to beta); a test that needs one to end sets it on a
    ManualClock it moves."""
    config = base_config(fake_url, streams={"heartbeat_s": heartbeat_s})
    for provider in config["providers"].values():
        provider["timeouts"] = {"first_chunk_s": first_chunk_s, "stall_s": stall_s, **HANG_GUARD}
    if beta_first_chunk_s is not None:
        config["providers"]["beta"]["timeouts"]["first_chunk_s"] = beta_first_chunk_s
    return config


@dataclass
class Stack:
    router: RouterHandle
    edge: Edge
    sdk: openai.AsyncOpenAI
    http: httpx.AsyncClient

    async def wire(self, body: dict[str, Any] | None = None) -> tuple[int, bytes, httpx.Headers]:
        """Status, raw body bytes and headers of one streamed request."""
        response = await self.http.post("/v1/chat/completions", json=body or BODY)
        return response.status_code, response.content, response.headers

    async def settled(self) -> None:
        """Every key lease and every session's active mark released."""

        async def released() -> bool:
            marks = [await self.router.runtime.sessions.active(p) for p in ("alpha", "beta")]
            return await self.router.leases_held() == 0 and not any(marks)

        await eventually(released, what="leases and active marks released")


OpenStack = Callable[..., Awaitable[Stack]]


def events(body: bytes) -> list[bytes]:
    """The SSE events of a body, comments included, each without its blank line."""
    assert body.endswith(b"\n\n"), body[-200:]
    return body[:-2].split(b"\n\n")


def error_of(event: bytes) -> dict[str, Any]:
    assert event.startswith(b"data: {"), event
    payload = orjson.loads(event[len(b"data: ") :])
    assert set(payload) == {"error"}, payload
    error: dict[str, Any] = payload["error"]
    return error


def data_chunks(body: bytes) -> list[dict[str, Any]]:
    return [
        orjson.loads(e[len(b"data: ") :])
        for e in events(body)
        if e.startswith(b"data: {") and b'"error"' not in e[:20]
    ]


def stream_call(fake: FakeUpstream, model: str = "model-a") -> CallRecord:
    return fake.state.calls(model=model, path="/chat/completions")[-1]


async def sdk_read(stack: Stack, **extra: Any) -> tuple[list[Any], BaseException | None]:
    """Chunks the SDK yields, and the exception it raised (None: the stream ended normally)."""
    stream = await stack.sdk.chat.completions.create(
        model="chain", messages=MESSAGES, stream=True, **extra
    )
    received: list[Any] = []
    try:
        async for chunk in stream:
            received.append(chunk)
    except openai.APIError as exc:
        return received, exc
    return received, None


async def leave_after(stream: Any, pieces: int) -> None:
    """Read an SDK chat stream until `pieces` content deltas came, then leave it (close it)."""
    received = 0
    async for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == pieces:
            break
    await stream.close()


async def reasoning_read(stream: AsyncIterable[Any]) -> tuple[list[str], str, str]:
    """An SDK chat stream's deltas, each kind in order ("reasoning", "content"), with its
    reasoning (`reasoning_content`) and its content."""
    kinds, reasoning, content = [], "", ""
    async for chunk in stream:
        for choice in chunk.choices:
            piece = (choice.delta.model_extra or {}).get("reasoning_content")
            if piece:
                kinds.append("reasoning")
                reasoning += piece
            if choice.delta.content:
                kinds.append("content")
                content += choice.delta.content
    return kinds, reasoning, content


# ---- a stepped upstream ------------------------------------------------------------------

# The upstream's events: its role chunk, three contents, its finish. It waits before each after
# the role chunk; the router relays the role chunk with the first content (its opening).
STEPPED = Scenario(chunks=3, stepped_chunks=4)
# The chunks the caller holds once the upstream sent each stepped event.
STEPPED_ARRIVALS = [2, 3, 4, 5]
# Router windows with no heartbeat (nor stall) while a test waits (`eventually`'s 15 s).
QUIET = {"heartbeat_s": 600.0, "stall_s": 600.0}


async def stepped_sse(fake: FakeUpstream, http: httpx.AsyncClient) -> bytes:
    """A chat stream over HTTP (`http` on an edge) from the stepped upstream (`step_through`):
    its body."""
    body = bytearray()

    async def read() -> None:
        async with http.stream("POST", "/v1/chat/completions", json=BODY) as response:
            assert response.status_code == 200
            async for part in response.aiter_bytes():
                body.extend(part)

    await step_through(fake, read, lambda: bytes(body).count(b"data: {"))
    return bytes(body)


async def stepped_chunks(
    fake: FakeUpstream, client: RouterClient, request: router_service_pb2.ChatStreamRequest
) -> int:
    """A ChatStream from the stepped upstream (`step_through`): how many chunks it carried."""
    counted = 0

    async def read() -> None:
        nonlocal counted
        async with client.chat_stream(request) as stream:
            async for message in stream:
                kind = message.WhichOneof("event")
                if kind == "chunks":
                    counted += len(message.chunks.chunks)
                else:
                    counted += kind == "chunk"

    await step_through(fake, read, lambda: counted)
    return counted


async def step_through(
    fake: FakeUpstream, read: Callable[[], Coroutine[Any, Any, None]], received: Callable[[], int]
) -> None:
    """`read` a stream (in a task of its own) while the test releases the stepped upstream event
    by event: each event's chunk reaches the caller (`received`: how many it holds) while the
    upstream waits before the next (a gate only a release opens)."""
    reader = asyncio.create_task(read())
    try:
        for step, expected in enumerate(STEPPED_ARRIVALS, start=1):

            async def waiting() -> bool:  # the upstream at its gate before event `step`
                return fake.state.held == 1 or reader.done()

            await eventually(waiting, what=f"the upstream waiting before event {step}")
            if reader.done():
                await reader  # its failure, if it failed
                raise AssertionError(f"the caller's stream ended before event {step}")
            fake.state.release()

            async def arrived(count: int = expected) -> bool:
                return received() >= count or reader.done()

            await eventually(arrived, what=f"event {step}'s chunk at the caller, the next unsent")
            assert received() == expected
        await reader
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


# ---- the wire ------------------------------------------------------------------------------
