"""`LocalChannel` ends calls as grpc.aio does, whatever the handler does: the same handlers
served on a real grpc.aio port and in-process (`InProcessHandlers`) give their callers the
same answers, codes, details and metadata."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients import LocalChannel, _local
from router_service.server._in_process import InProcessHandlers
from tests.helpers import eventually


async def _raises(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise ValueError("no luck")


async def _sets_code(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    context.set_details("not here")
    return b"unsent"


async def _sets_code_and_raises(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
    raise ValueError("and then this")


async def _aborts(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_trailing_metadata((("kept", "no"),))
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no", (("why", "because"),))
    return b""  # pragma: no cover


async def _trails(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_trailing_metadata((("extra", "yes"), ("x-bin", b"\x00\x01")))
    return request[::-1]


async def _grows(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"x" * int(request)


async def _streams_then_raises(
    request: bytes, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    yield b"one"
    yield b"two"
    raise RuntimeError("mid-stream")


async def _streams(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for piece in request.split(b","):
        yield piece


CANCELLED: list[str] = []  # the handlers that saw their call cancelled
WAITING: list[str] = []  # the handlers waiting for their caller to go


async def _waits(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    WAITING.append(request.decode())
    try:
        await asyncio.Event().wait()  # until the caller goes
    except asyncio.CancelledError:
        CANCELLED.append(request.decode())
        raise


async def _reads_once(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    yield await anext(aiter(requests))  # then reads no more: an upstream that does not drain
    await asyncio.Event().wait()


_UNARY: dict[str, Callable[..., Awaitable[bytes]]] = {
    "raises": _raises,
    "sets_code": _sets_code,
    "sets_code_and_raises": _sets_code_and_raises,
    "aborts": _aborts,
    "trails": _trails,
    "grows": _grows,
}
_STREAMS = {"streams_then_raises": _streams_then_raises, "streams": _streams, "waits": _waits}


def _generic() -> grpc.GenericRpcHandler:
    handlers = {name: grpc.unary_unary_rpc_method_handler(f) for name, f in _UNARY.items()}
    handlers.update({n: grpc.unary_stream_rpc_method_handler(f) for n, f in _STREAMS.items()})
    handlers["reads_once"] = grpc.stream_stream_rpc_method_handler(_reads_once)
    return grpc.method_handlers_generic_handler("t.T", handlers)


@contextlib.asynccontextmanager
async def _served(
    wire_options: list[tuple[str, Any]] | None = None,
) -> AsyncIterator[tuple[grpc.aio.Server, InProcessHandlers, Any, Any]]:
    """The handlers on a grpc.aio port and in-process, and a channel to each (the port's
    with `wire_options`)."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 1024)])
    handlers = InProcessHandlers(server, [], 1024)
    handlers.add_generic_rpc_handlers((_generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    handlers.start()
    local = LocalChannel(handlers)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=wire_options) as wire:
            yield server, handlers, wire, local
    finally:
        await local.close()
        await server.stop(0)


@pytest.fixture
async def channels() -> AsyncIterator[tuple[Any, Any]]:
    """(a channel to a grpc.aio port, a LocalChannel) to the same handlers."""
    async with _served() as (_, _, wire, local):
        yield wire, local


async def _outcome(call: Any) -> tuple[Any, ...]:
    try:
        if hasattr(call, "read"):  # a stream
            answer: Any = [message async for message in call]
        else:
            answer = await call
    except grpc.aio.AioRpcError as error:
        return "error", error.code(), error.details(), tuple(error.trailing_metadata() or ())
    trailing = tuple(await call.trailing_metadata() or ())
    return "ok", answer, await call.code(), await call.details(), trailing


@pytest.mark.parametrize("method", [*_UNARY, "missing"])
async def test_a_unary_call_ends_as_on_the_wire(channels: tuple[Any, Any], method: str) -> None:
    ends = [await _outcome(ch.unary_unary(f"/t.T/{method}")(b"abc")) for ch in channels]
    assert ends[1] == ends[0], method


@pytest.mark.parametrize("method", ["streams_then_raises", "streams"])
async def test_a_stream_ends_as_on_the_wire(channels: tuple[Any, Any], method: str) -> None:
    ends = [await _outcome(ch.unary_stream(f"/t.T/{method}")(b"a,b,c")) for ch in channels]
    assert ends[1] == ends[0], method


async def test_a_request_over_the_limit_ends_as_on_the_wire(channels: tuple[Any, Any]) -> None:
    too_large = [await _outcome(ch.unary_unary("/t.T/trails")(b"x" * 2000)) for ch in channels]
    assert too_large[1] == too_large[0]
    assert too_large[0][1] is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_request_over_the_callers_own_limit_ends_as_on_the_wire() -> None:
    """The caller's `grpc.max_send_message_length` (`use_options`) refuses a request before
    any handler sees it, unary or streamed; in-process it was sent whatever its size."""
    options = [("grpc.max_send_message_length", 16)]
    async with _served(wire_options=options) as (_, _, wire, local):
        local.use_options(options)
        ends = []
        for channel in (wire, local):
            unary = await _outcome(channel.unary_unary("/t.T/trails")(b"x" * 17))
            streamed = await _outcome(channel.unary_stream("/t.T/streams")(b"x" * 17))
            within = await _outcome(channel.unary_unary("/t.T/trails")(b"x" * 16))
            ends.append((unary, streamed, within[:2]))
        assert ends[1] == ends[0]
        refused = "CLIENT: Sent message larger than max (17 vs. 16)"
        assert ends[0][0] == ("error", grpc.StatusCode.RESOURCE_EXHAUSTED, refused, ())
        # A Realtime message over it ends the call too, before the handler reads it (grpc's
        # own says INTERNAL "Internal error from Core" there: its unary words are clearer).
        call = local.stream_stream("/t.T/reads_once")()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.write(b"y" * 17)
        assert (caught.value.code(), caught.value.details()) == ends[0][0][1:3]


async def _read_until_refused(call: Any) -> tuple[Any, ...]:
    """The messages read before the call failed, and how it failed."""
    read: list[Any] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in call:
            read.append(message)
    return read, caught.value.code(), caught.value.details()


async def test_an_answer_over_the_callers_limit_ends_as_on_the_wire() -> None:
    """The caller's `grpc.max_receive_message_length` (`use_options`: the options its grpc
    channel would be made with; grpc's 4 MiB when unset, none when -1) holds a unary answer
    and each message of a stream; those before the large one are read."""
    options = [("grpc.max_receive_message_length", 16)]
    async with _served(wire_options=options) as (_, _, wire, local):
        local.use_options(options)
        ends = []
        for channel in (wire, local):
            unary = await _outcome(channel.unary_unary("/t.T/grows")(b"17"))
            streamed = channel.unary_stream("/t.T/streams")(b"a," + b"b" * 20 + b",c")
            within = await _outcome(channel.unary_unary("/t.T/grows")(b"16"))
            ends.append((unary, await _read_until_refused(streamed), within))
    assert ends[1] == ends[0]
    assert ends[0][0][1] is grpc.StatusCode.RESOURCE_EXHAUSTED
    refused = "Stream removed (CLIENT: Received message larger than max (20 vs. 16))"
    assert ends[0][1] == ([b"a"], grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
    assert ends[0][2][:2] == ("ok", b"x" * 16)
    async with _served() as (_, _, wire, local):
        over_default = str(4 * 1024 * 1024 + 1).encode()
        ends = [await _outcome(ch.unary_unary("/t.T/grows")(over_default)) for ch in (wire, local)]
        assert ends[1] == ends[0] and ends[0][1] is grpc.StatusCode.RESOURCE_EXHAUSTED
        local.use_options([("grpc.max_receive_message_length", -1)])
        assert len(await local.unary_unary("/t.T/grows")(over_default)) == 4 * 1024 * 1024 + 1


async def test_cancelling_the_caller_cancels_the_handler(channels: tuple[Any, Any]) -> None:
    for channel, name in zip(channels, ("wire", "local"), strict=True):
        call = channel.unary_stream("/t.T/waits")(name.encode())
        assert await call.read() == b"first"

        async def waiting(name: str = name) -> bool:
            return name in WAITING

        # Cancelled as its "first" is still being written, grpc.aio's server ends the call
        # without resuming the handler (its generator is closed, not cancelled): cancel it
        # where it waits, as a caller that goes mid-call does.
        await eventually(waiting, what=f"the {name} handler waiting")
        assert call.cancel() and call.cancelled()
        with pytest.raises(asyncio.CancelledError):
            await call.read()
        assert await call.code() is grpc.StatusCode.CANCELLED
        assert await call.details() == "Locally cancelled by application!"

        async def seen(name: str = name) -> bool:
            return name in CANCELLED

        await eventually(seen, what=f"the {name} handler cancelled")


async def test_a_handler_sees_its_deadline(channels: tuple[Any, Any]) -> None:
    _, local = channels
    call = local.unary_stream("/t.T/waits")(b"deadline", timeout=1.0)  # the first read's time
    assert await call.read() == b"first"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "Deadline Exceeded",
    )

    async def seen() -> bool:
        return "deadline" in CANCELLED

    await eventually(seen, what="the handler cancelled at its deadline")


async def test_a_stream_is_done_once_read_to_its_end(channels: tuple[Any, Any]) -> None:
    """Its status comes after its messages: its caller's span ends with the last read."""
    for channel in channels:
        call = channel.unary_stream("/t.T/streams")(b"a,b")
        ended: list[Any] = []
        call.add_done_callback(ended.append)
        assert await call.read() == b"a"
        assert not call.done() and not ended  # a message unread: its status waits
        assert await call.read() == b"b"
        assert await call.read() is grpc.aio.EOF
        assert call.done() and ended == [call]


async def test_a_stream_read_to_its_last_message_is_done(channels: tuple[Any, Any]) -> None:
    """Once its handler has ended and its every message is read, as the wire delivers its
    trailers then: a caller that stops there (the edge after a stream's error event, a Realtime
    close) and cancels changes nothing, its span ends OK."""
    for channel in channels:
        call = channel.unary_stream("/t.T/streams")(b"a,b")
        assert [await call.read(), await call.read()] == [b"a", b"b"]

        async def done(call: Any = call) -> bool:
            return bool(call.done())

        await eventually(done, what="the stream done")
        assert not call.cancel()
        assert (await call.code(), call.cancelled()) == (grpc.StatusCode.OK, False)


async def test_a_caller_writes_no_further_ahead_than_its_handler_reads(
    channels: tuple[Any, Any],
) -> None:
    """As a write waits for HTTP/2's window on the wire: a Realtime caller faster than the
    router reads (its upstream socket full) must not buffer without bound in the process."""
    _, local = channels
    call = local.stream_stream("/t.T/reads_once")()
    await call.write(b"open")
    assert await call.read() == b"open"
    written = 0

    async def floods() -> None:
        nonlocal written
        for _ in range(1000):
            await call.write(b"event")
            written += 1

    flood = asyncio.ensure_future(floods())
    for _ in range(50):  # turns of the loop, not time: a write that does not wait needs none
        await asyncio.sleep(0)
    assert not flood.done() and written < 100
    call.cancel()  # the waiting write ends with the call
    with pytest.raises(asyncio.InvalidStateError):
        await flood


async def test_a_call_a_stop_cuts_ends_as_on_the_wire() -> None:
    """UNAVAILABLE (the edge's 503, which an SDK retries on another replica), not the CANCELLED
    of a caller that left (499)."""
    async with _served() as (server, handlers, wire, local):
        calls = [channel.unary_stream("/t.T/waits")(b"stopped") for channel in (wire, local)]
        for call in calls:
            assert await call.read() == b"first"
        await asyncio.gather(server.stop(0), handlers.stop(0))
        ends = []
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            ends.append((caught.value.code(), caught.value.details()))
    assert ends[1] == ends[0]
    assert ends[0][0] is grpc.StatusCode.UNAVAILABLE


async def test_a_call_started_as_the_server_stops_is_refused() -> None:
    """Its task first runs after the stop looked for the calls to wait for and cancel: served
    then, its handler would run unwatched on a stopped server (its store closed under it)."""
    async with _served() as (_, handlers, _, local):
        call = local.unary_unary("/t.T/trails")(b"late")
        await handlers.stop(0)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_calls_share_one_deadline_timer(
    channels: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call that ends before its deadline leaves no timer to cancel: the channel's one timer
    waits for the earliest deadline still to come (a timer per call cost ~4.5 µs of each)."""
    _, local = channels
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counted(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counted)
    for _ in range(20):
        assert await local.unary_unary("/t.T/trails")(b"abc", timeout=60) == b"cba"
    assert len(armed) == 1


async def test_each_deadline_expires_whatever_came_before(channels: tuple[Any, Any]) -> None:
    """An earlier deadline takes the timer over; once it passed, the later one is waited for."""
    _, local = channels
    # Deadlines on the real clock (the loop's): the first messages have a second to arrive.
    later = local.unary_stream("/t.T/waits")(b"later", timeout=2.0)
    sooner = local.unary_stream("/t.T/waits")(b"sooner", timeout=1.0)
    for call in (later, sooner):
        assert await call.read() == b"first"
    assert await sooner.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # Not ended with it while its own deadline is ahead (a loaded machine's loop may have
    # reached that too by now: then both were due at once).
    assert not later.done() or later.time_remaining() <= _local._TIMER_SLACK_S
    assert await later.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert later.time_remaining() == 0.0
