"""RESP replies read as a connection's bytes arrive (`_resp_wire.ReplyReader`): cut at every byte
boundary, one byte at a time and at random cuts (nested arrays, nil bulk strings and arrays,
errors inside arrays, pub/sub and invalidation messages), with the work done growing with the
bytes, not with the bytes times the reads; and through a connection of `_resp.py`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router_service.state._resp import _Connection
from router_service.state._resp_wire import MORE, RedisReplyError, ReplyReader

pytestmark = pytest.mark.timeout(60)

# Each reply's bytes and its value; an error reply's value is ("error", message).
CORPUS: list[tuple[bytes, Any]] = [
    (b"+OK\r\n", "OK"),
    (b":-3\r\n", -3),
    (b"$5\r\nhello\r\n", "hello"),
    (b"$0\r\n\r\n", ""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"$4\r\na\r\nb\r\n", "a\r\nb"),  # a bulk string holds any bytes
    (b"$2\r\n\xff\xfe\r\n", b"\xff\xfe".decode(errors="surrogateescape")),
    (b"-ERR boom\r\n", ("error", "ERR boom")),
    (b"*3\r\n:1\r\n-NOSCRIPT gone\r\n$-1\r\n", [1, ("error", "NOSCRIPT gone"), None]),
    (b"*2\r\n*2\r\n$1\r\na\r\n*-1\r\n*0\r\n", [["a", None], []]),
    (b"*1\r\n*1\r\n*1\r\n*1\r\n:7\r\n", [[[[7]]]]),
    (b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", ["subscribe", "ch", 1]),
    (b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n", ["message", "ch", "hey"]),
    (
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*2\r\n$3\r\nk:1\r\n$3\r\nk:2\r\n",
        ["message", "__redis__:invalidate", ["k:1", "k:2"]],
    ),
    (  # FLUSHALL: the keys are a nil array
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*-1\r\n",
        ["message", "__redis__:invalidate", None],
    ),
]
WIRE = b"".join(data for data, _ in CORPUS)
VALUES = [value for _, value in CORPUS]


def plain(value: Any) -> Any:
    """A reply as the corpus writes it: error replies as ("error", message)."""
    if isinstance(value, RedisReplyError):
        return ("error", str(value))
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def read_all(reader: ReplyReader) -> list[Any]:
    out = []
    while (reply := reader.read()) is not MORE:
        out.append(plain(reply))
    return out


def replies_per_piece(pieces: Iterable[bytes]) -> list[list[Any]]:
    """What one reader returns after each piece is fed."""
    reader = ReplyReader()
    out = []
    for piece in pieces:
        reader.feed(piece)
        out.append(read_all(reader))
    return out


def test_every_reply_type_parses() -> None:
    assert replies_per_piece([WIRE]) == [VALUES]


def test_cut_at_every_byte_the_replies_before_the_cut_come_then_the_rest() -> None:
    ends = [sum(len(data) for data, _ in CORPUS[: i + 1]) for i in range(len(CORPUS))]
    for cut in range(len(WIRE) + 1):
        before, after = replies_per_piece([WIRE[:cut], WIRE[cut:]])
        assert len(before) == sum(end <= cut for end in ends), cut
        assert before + after == VALUES, cut


def test_one_byte_at_a_time_each_reply_comes_with_its_last_byte() -> None:
    got = replies_per_piece(WIRE[i : i + 1] for i in range(len(WIRE)))
    expected: list[list[Any]] = [[] for _ in WIRE]
    end = 0
    for data, value in CORPUS:
        end += len(data)
        expected[end - 1] = [value]
    assert got == expected


def _bulk(data: bytes) -> tuple[bytes, Any]:
    return b"$%d\r\n%s\r\n" % (len(data), data), data.decode(errors="surrogateescape")


def _line(kind: bytes, text: str) -> bytes:
    return kind + text.encode() + b"\r\n"


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_LEAVES = st.one_of(
    st.sampled_from([(b"$-1\r\n", None), (b"*-1\r\n", None), (b"*0\r\n", [])]),
    st.integers().map(lambda i: (b":%d\r\n" % i, i)),
    st.binary(max_size=30).map(_bulk),
    _TEXT.map(lambda text: (_line(b"+", text), text)),
    _TEXT.map(lambda text: (_line(b"-", text), ("error", text))),
)


def _array(items: list[tuple[bytes, Any]]) -> tuple[bytes, Any]:
    return b"*%d\r\n" % len(items) + b"".join(data for data, _ in items), [v for _, v in items]


REPLIES = st.lists(
    st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=5).map(_array), max_leaves=25),
    min_size=1,
    max_size=6,
)


@given(REPLIES)
def test_any_replies_one_byte_at_a_time(replies: list[tuple[bytes, Any]]) -> None:
    wire = b"".join(data for data, _ in replies)
    got = replies_per_piece(wire[i : i + 1] for i in range(len(wire)))
    expected: list[list[Any]] = [[] for _ in wire]
    end = 0
    for data, value in replies:
        end += len(data)
        expected[end - 1].append(value)
    assert got == expected


@given(REPLIES, st.data())
def test_any_replies_at_any_cuts(replies: list[tuple[bytes, Any]], data: st.DataObject) -> None:
    wire = b"".join(data for data, _ in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    got = [reply for piece in replies_per_piece(pieces) for reply in piece]
    assert got == [value for _, value in replies]


def test_arrays_nested_deeper_than_the_recursion_limit_parse() -> None:
    depth = sys.getrecursionlimit() + 100
    reader = ReplyReader()
    reader.feed(b"*1\r\n" * depth + b":1\r\n")
    reply = reader.read()
    for _ in range(depth):
        (reply,) = reply
    assert reply == 1


def _builtin_calls(pieces: list[bytes]) -> int:
    """Calls of builtins (find, int, decode, append, …) made to read `pieces`: the work done,
    counted the same on any machine."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        calls += event == "c_call"

    reader = ReplyReader()
    sys.setprofile(count)
    try:
        for piece in pieces:
            reader.feed(piece)
            while reader.read() is not MORE:
                pass
    finally:
        sys.setprofile(None)
    return calls


def test_a_large_reply_cut_into_many_reads_costs_what_it_costs_whole() -> None:
    # An MGET of 2,000 documents in 200 reads: what was parsed is not parsed again.
    document = b"$40\r\n" + b"d" * 40 + b"\r\n"
    wire = b"*2000\r\n" + b"".join(b"$-1\r\n" if i % 10 == 9 else document for i in range(2000))
    step = len(wire) // 200 + 1
    pieces = [wire[i : i + step] for i in range(0, len(wire), step)]
    whole = _builtin_calls([wire])
    assert _builtin_calls(pieces) <= whole + 10 * len(pieces)


async def test_a_connection_fed_one_byte_at_a_time_answers_its_callers_then_pushes() -> None:
    connection = _Connection(timeout_s=60.0)
    pushed: list[Any] = []
    connection.on_push = pushed.append
    try:
        futures = connection.send([("GET", "a"), ("SUBSCRIBE", "ch")])
        for i in range(len(WIRE)):
            connection.data_received(WIRE[i : i + 1])
        assert connection.broken is None
        assert [plain(future.result()) for future in futures] == VALUES[:2]
        assert [plain(push) for push in pushed] == VALUES[2:]
    finally:
        connection.close()


@pytest.mark.parametrize("garbage", [b"?what\r\n", b"$x\r\n", b"*2\r\n:1\r\n!1\r\n"])
async def test_bytes_that_are_no_resp_close_the_connection(garbage: bytes) -> None:
    connection = _Connection(timeout_s=60.0)
    (future,) = connection.send([("GET", "a")])
    for i in range(len(garbage)):
        connection.data_received(garbage[i : i + 1])
    with pytest.raises(ConnectionError, match="redis protocol error"):
        future.result()
    assert connection.broken is not None
    await asyncio.sleep(0)  # the flush the send scheduled runs on a closed connection: nothing
