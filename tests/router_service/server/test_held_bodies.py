"""What an open call keeps of its prompt: the decoded request (a fallback sends it again), not
the OpenAI body written of it (`validate_chat`'s, handed to the first attempt, which lets go of
it once sent)."""

from __future__ import annotations

import gc
import types
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from typing import Any

import pytest
from httpx._decoders import ByteChunker

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually, tracked


def _asks(obj: Any, marker: str) -> bool:
    """Whether `obj` is an OpenAI chat body whose first message is `marker`."""
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        return False
    first = obj["messages"][0] if obj["messages"] else None
    return isinstance(first, dict) and first.get("content") == marker


@asynccontextmanager
async def _open_stream(router: RouterHandle, fake: FakeUpstream, text: str) -> AsyncIterator[None]:
    """A ChatStream open (until the block ends) once its first chunk has arrived."""
    fake.state.set_scenario(Scenario(chunks=50, held_after_chunks=2))  # open until cut
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    params = chat_pb2.ChatParams(model="chain", messages=[message])
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=params))
    try:
        async for event in call:
            if event.HasField("chunk"):
                break
        del event  # the test's own
        yield
    finally:
        call.cancel()


async def test_an_open_stream_keeps_no_body_written_of_its_prompt(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    marker = "held? " + "x" * 4096  # a prompt no other test sends
    async with _open_stream(router, fake, marker):
        gc.collect()
        received = [r.body for r in fake.state.records]  # the fake upstream's own parse
        kept = [o for o in tracked(dict) if _asks(o, marker) and not any(o is b for b in received)]
        assert kept == []


def _ours(obj: Any) -> bool:
    """Whether `obj` is a suspended coroutine or generator of our code (grpc's own, on both
    sides of the wire here, keep the last message they handled)."""
    code = getattr(obj, "cr_code", None) or getattr(obj, "ag_code", None)
    code = code or getattr(obj, "gi_code", None)
    return code is not None and "/router_service/" in code.co_filename


def _upstream_chunk(obj: Any) -> bool:
    """Whether `obj` is an OpenAI stream chunk as parsed from the upstream's event."""
    return isinstance(obj, dict) and obj.get("object") == "chat.completion.chunk"


async def test_an_open_stream_keeps_neither_httpx_readers_nor_parsed_events(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # The upstream's body is read straight from the connection (`body_parts`), and the parsed
    # JSON of its last event is not held while the stream waits for the next.
    def held() -> list[Any]:
        gc.collect()
        found = tracked((ByteChunker, dict))
        return [o for o in found if isinstance(o, ByteChunker) or _upstream_chunk(o)]

    # What earlier tests of this process left behind is theirs (kept referenced: no id reused).
    before = held()
    async with _open_stream(router, fake, "hello"):

        async def nothing_held() -> bool:  # once the router has read what the upstream sent
            known = {id(o) for o in before}
            return all(id(o) in known for o in held())

        # Each poll is a full collection over an xdist worker's heap: slow on a loaded machine
        # (a CI run beside other work timed out at 2 s); it returns as soon as it holds.
        await eventually(nothing_held, within=10.0, what="no chunker nor parsed event held")


def _held_by_our_frames() -> list[tuple[Any, str]]:
    """Stream messages a suspended frame of ours refers to, with that frame's name."""
    gc.collect()
    kinds = (pb.ChatStreamResponse, chat_pb2.ChatCompletionChunk)
    held = [o for o in tracked(kinds) if o.ByteSize()]
    return [(o, _name(r)) for o in held for r in gc.get_referrers(o) if _ours(r)]


def _name(frame_owner: Any) -> str:
    code = getattr(frame_owner, "cr_code", None) or getattr(frame_owner, "ag_code", None)
    return str(getattr(code or getattr(frame_owner, "gi_code", None), "co_qualname", "?"))


async def test_an_open_stream_holds_no_message_while_it_waits(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # Each layer lets go of its last event (and the relay of the opening chunks) once handed on:
    # a message's protobuf arena is native memory, a KiB or more an idle stream. What an earlier
    # test of this xdist worker left suspended is its own (kept referenced: no id reused).
    before = _held_by_our_frames()
    known = {id(o) for o, _ in before}
    async with _open_stream(router, fake, "hello"):
        holders: list[str] = []

        async def none_held() -> bool:  # once the router has relayed what the upstream sent
            holders[:] = [name for o, name in _held_by_our_frames() if id(o) not in known]
            return not holders

        try:
            await eventually(none_held, within=10.0, what="no stream message held by our frames")
        except AssertionError as failed:
            raise AssertionError(f"{failed}: held by {holders}") from None


async def test_an_open_stream_has_no_reader_task_nor_pass_through_layer(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # The guard reads the upstream in the call's own task, and without the cache the servicer
    # relays the executor's stream itself: neither a task nor a generator that only passes on.
    # The adapter's stream opens and closes its response without a generator around it either.
    def ours() -> list[str]:
        gc.collect()
        kinds: tuple[type[Any], ...] = (
            types.CoroutineType,
            types.AsyncGeneratorType,
            types.GeneratorType,
        )
        return [o.__qualname__ for o in tracked(kinds) if _ours(o)]

    before = ours()
    async with _open_stream(router, fake, "hello"):
        held = ours()
        assert "Executor.chat_stream" in held, held  # the stream's own frames are counted
        layers = ("_Reader._read", "RouterServicer._fresh_stream", "OpenAIAdapter.stream_chat")
        assert not [n for n in held if n in layers], held
        assert len(held) > len(before)


@pytest.mark.parametrize("traced", [False, True])
async def test_an_open_stream_holds_one_exit_stack(
    start_router: StartRouter, fake: FakeUpstream, traced: bool
) -> None:
    # What a stream's attempt holds (the upstream response, the lease's end, the attempt span's
    # end) closes with the attempt's one stack: no stack around it for the span (`pop_all`),
    # none in the adapter for its one response. A stack is ~0.85 KiB an idle stream.
    def stacks() -> list[AsyncExitStack]:
        gc.collect()
        return tracked(AsyncExitStack)

    with TelemetryCapture() if traced else nullcontext():  # traced: the attempt's span is real
        router = await start_router(base_config(fake.base_url))
        before = stacks()  # kept referenced: no id reused
        known = {id(o) for o in before}
        async with _open_stream(router, fake, "hello"):
            opened = [o for o in stacks() if id(o) not in known]
            assert len(opened) == 1, opened
