"""The one SSE parser every adapter uses."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._sse import SseDecoder, SseEvent, json_events


def _parse(*chunks: bytes) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def test_events_are_dispatched_at_blank_lines() -> None:
    stream = (
        b": a comment\n"
        b"event: message_start\n"
        b'data: {"a": 1}\n'
        b"\n"
        b"data: first\n"
        b"data:second\n"  # no space after the colon
        b"\n"
        b"\n"
        b"id: 7\n"  # fields we do not use are ignored
        b"data: tail without a blank line"
    )
    assert _parse(stream) == [
        SseEvent("message_start", b'{"a": 1}'),
        SseEvent("", b"first\nsecond"),
        SseEvent("", b"tail without a blank line"),
    ]


def test_an_event_name_does_not_leak_into_the_next_event() -> None:
    events = _parse(b"event: ping\ndata: {}\n\ndata: {}\n\n")
    assert [e.event for e in events] == ["ping", ""]


def test_crlf_cr_and_lf_all_end_lines_and_a_bom_is_dropped() -> None:
    stream = b"\xef\xbb\xbfevent: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n"
    assert _parse(stream) == [SseEvent("a", b"1"), SseEvent("b", b"2"), SseEvent("", b"3")]


def test_only_one_space_after_the_colon_is_removed_and_a_bare_field_has_no_value() -> None:
    assert _parse(b"data:  two spaces\ndata\n\n") == [SseEvent("", b" two spaces\n")]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    # Were the LF taken for a second line end, the blank line would dispatch "1" early.
    assert _parse(b"data: 1\r", b"\ndata: 2\r", b"\n\r", b"\n") == [SseEvent("", b"1\n2")]


_LINE = st.sampled_from(
    [b'data: {"k": "\xc3\xa9\xe2\x82\xac"}', b"data:x", b"event: delta", b": ping", b"", b"id: 3"]
)


@given(
    lines=st.lists(_LINE, max_size=12),
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_where_the_chunks_are_cut_changes_nothing(
    lines: list[bytes], ending: bytes, cuts: list[int]
) -> None:
    # Cuts fall anywhere: inside a CRLF, inside a multi-byte character, inside the BOM.
    stream = b"\xef\xbb\xbf" + b"".join(line + ending for line in lines)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert _parse(*chunks) == _parse(stream)


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: tuple[bytes, ...]) -> None:
        self.chunks = chunks
        self.read_to_the_end = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        self.read_to_the_end = True


def _response(*chunks: bytes) -> httpx.Response:
    return httpx.Response(200, stream=_Chunks(chunks))


async def test_json_events_stop_at_done() -> None:
    body = b'event: x\ndata: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\ndata: {"n": 3}\n\n'
    events = [e async for e in json_events(_response(body[:9], body[9:30], body[30:]))]
    assert events == [("x", {"n": 1}), ("", {"n": 2})]


async def test_a_last_event_without_its_blank_line_is_still_read() -> None:
    events = [e async for e in json_events(_response(b'data: {"n": 1}\n\ndata: {"n": 2}'))]
    assert events == [("", {"n": 1}), ("", {"n": 2})]


async def test_done_is_read_to_the_end_of_the_stream_so_the_connection_can_be_reused() -> None:
    source = _Chunks((b'data: {"n": 1}\n\n', b"data: [DONE]\n\n", b"", b"\n"))
    events = [e async for e in json_events(httpx.Response(200, stream=source))]
    assert events == [("", {"n": 1})]
    assert source.read_to_the_end


class _CutAfter(_Chunks):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


async def test_a_connection_cut_after_done_fails_nothing() -> None:
    # The answer was whole: an upstream (or a proxy) that closes without the body's last chunk
    # must not turn it into a mid-stream failure (an error event after every chunk, a cooldown).
    source = _CutAfter((b'data: {"n": 1}\n\n', b"data: [DONE]\n\n"))
    events = [e async for e in json_events(httpx.Response(200, stream=source))]
    assert events == [("", {"n": 1})]


@pytest.mark.parametrize(
    "payload", [b"data: not json\n\n", b"data: [1, 2]\n\n", b'data: {"bad": "\xff"}\n\n']
)
async def test_a_payload_that_is_not_a_json_object_is_the_upstreams_failure(
    payload: bytes,
) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        [e async for e in json_events(_response(payload))]
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR


def test_an_empty_chunk_between_cr_and_lf_keeps_them_one_line_end() -> None:
    assert _parse(b"data: 1\r", b"", b"\ndata: 2\r\n\r\n") == [SseEvent("", b"1\n2")]


def _bytes_allocated_per_feed(decoder: SseDecoder, chunks: list[bytes]) -> int:
    """The sum over `chunks` of the most memory each `feed` allocated at once: every copy the
    decoder makes is a new allocation, so this counts the bytes it copied (not the time)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        total = 0
        for chunk in chunks:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            decoder.feed(chunk)
            total += tracemalloc.get_traced_memory()[1] - before
        return total
    finally:
        if started:
            tracemalloc.stop()


def test_a_long_line_in_small_chunks_is_copied_a_bounded_number_of_times() -> None:
    # Re-joining the unfinished line to each new chunk copies it once per chunk: 256 chunks of
    # 1 KiB cost 32 MiB (quadratic; 2 GiB for a 16 MiB event). Held as pieces, the line is
    # copied a few times in all (joined at its end, cut into field and value).
    line = b"data: " + b"x" * (256 << 10)
    chunks = [line[at : at + 1024] for at in range(0, len(line), 1024)] + [b"\n\n"]
    decoder = SseDecoder()
    copied = _bytes_allocated_per_feed(decoder, chunks)
    size = len(line)
    assert copied < 6 * size, f"{copied:,} bytes allocated for a {size:,}-byte line"
    assert decoder.close() == []


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_a_line_split_over_many_chunks_is_whole_whatever_its_end(ending: bytes) -> None:
    chunks = [b"\xef\xbb", b"\xbfda", b"ta: a", b"b", b"", b"c", ending, b"data: d", ending, ending]
    assert _parse(*chunks) == [SseEvent("", b"abc\nd")]


def test_a_line_not_ended_past_the_bound_fails_before_more_is_held() -> None:
    decoder = SseDecoder(limit=10)
    assert decoder.feed(b"data: 1234") == []  # 10 bytes held: at the bound, not past it
    with pytest.raises(UpstreamFailure) as caught:
        decoder.feed(b"5")
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR
    assert "larger than the limit of 10 bytes" in str(caught.value)


def test_events_before_a_line_past_the_bound_come_first_then_its_failure() -> None:
    decoder = SseDecoder(limit=10)
    assert decoder.feed(b"data: 1\n\ndata: 12") == [SseEvent("", b"1")]
    assert decoder.feed(b"3") == []
    assert decoder.feed(b"\n\ndata: 2\n\ndata: 0123456789ab") == [
        SseEvent("", b"123"),
        SseEvent("", b"2"),
    ]
    with pytest.raises(UpstreamFailure):  # failed for good: nothing after it is read
        decoder.feed(b"\n\n")
    with pytest.raises(UpstreamFailure):
        decoder.close()
