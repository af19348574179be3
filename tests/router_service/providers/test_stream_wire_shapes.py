"""What real upstreams write into an event stream besides its events, read by the router over
loopback: keep-alives (a `: ping` comment, an empty `data:` a proxy sends) are nothing, and a
failure said in a way of its own (llama.cpp's `error:` line) is that failure, classified."""

from __future__ import annotations

import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat_stream


async def streamed_text(router: RouterHandle) -> tuple[str, list[str]]:
    """The stream's text and its chunks' finish reasons (the raw upstream words)."""
    text, finished = [], []
    async for event in router.stub.ChatStream(chat_stream(text="one two three")):
        chunks = [event.chunk] if event.WhichOneof("event") == "chunk" else []
        chunks += list(event.chunks.chunks) if event.WhichOneof("event") == "chunks" else []
        for chunk in chunks:
            for choice in chunk.choices:
                text.append(choice.delta.text)
                finished += [choice.finish_reason_raw] if choice.finish_reason_raw else []
    return "".join(text), finished


@pytest.mark.parametrize(
    "keepalive",
    [
        b"data:\n\n",  # an empty data field: no event (the SSE standard), whatever a proxy means
        b"data: \r\n\r\n",
        b": keep-alive\n\n",
    ],
)
async def test_keep_alives_between_events_are_not_events(
    fake: FakeUpstream, start_router: StartRouter, keepalive: bytes
) -> None:
    fake.state.set_scenario(Scenario(content="one two three", between_events=keepalive.decode()))
    router = await start_router(base_config(fake.base_url))
    text, finished = await streamed_text(router)
    assert text == "one two three"
    assert finished == ["stop"]
    assert fake.state.count() == 1  # no other deployment was asked


async def test_llama_cpps_error_line_fails_the_stream_over_to_the_next_deployment(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # llama.cpp's server (builds of 2025) says a failure after its 200 in a field of its own,
    # `error: {...}`, which the SSE standard would ignore: the stream then read as a success.
    line = b'error: {"code":503,"message":"Loading model","type":"unavailable_error"}\n\n'
    fake.state.set_scenario(Scenario(between_events=line.decode()), model="model-a")
    fake.state.set_scenario(Scenario(content="served by b"), model="model-b")
    router = await start_router(base_config(fake.base_url))
    assert await streamed_text(router) == ("served by b", ["stop"])
    assert [call.model for call in fake.state.calls()] == ["model-a", "model-b"]
