"""The load generator's count of a stream's `data:` events (`_load.SseCount`), fed the pieces a
socket read may cut a stream into: an event is counted once wherever the cuts fall, and the
`[DONE]` that ends the stream is found even when it is cut."""

from __future__ import annotations

import pytest

from benchmarks._load import SseCount

pytestmark = pytest.mark.timeout(10)

STREAM = b'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\ndata: [DONE]\n\n'


def _fed(pieces: list[bytes]) -> SseCount:
    count = SseCount()
    for piece in pieces:
        count.feed(piece)
    return count


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_an_event_is_counted_once_wherever_a_read_ends(cut: int) -> None:
    count = _fed([STREAM[:cut], STREAM[cut:]])
    assert count.events == 4  # three chunks and [DONE]
    assert count.done()


def test_a_stream_read_a_byte_at_a_time() -> None:
    count = _fed([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert (count.events, count.done()) == (4, True)


def test_a_read_that_ends_just_after_an_events_start_is_not_counted_again() -> None:
    # the first read ends 9 bytes into the second event: its `data:` is in the last 16 bytes
    count = _fed([b'data: {"a":1}\n\ndata: {"b', b'":2}\n\ndata: [DONE]\n\n'])
    assert count.events == 3


def test_a_stream_without_done_is_not_done() -> None:
    assert not _fed([b'data: {"n":1}\n\n', b'data: {"n":2}\n\n']).done()


def test_an_error_event_is_seen_even_when_cut() -> None:
    count = SseCount()
    count.feed(b'data: {"err')
    assert not count.error_seen
    count.feed(b'or": {"message": "x"}}\n\n')
    assert count.error_seen
