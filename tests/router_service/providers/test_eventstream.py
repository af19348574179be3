"""The AWS event stream decoder: frames split anywhere, every header type, and broken bytes
(bad CRCs, impossible lengths, a frame cut short) as errors, never a wait for more."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest

from router_service.providers._eventstream import (
    EventStreamDecoder,
    EventStreamError,
    Message,
    encode_message,
)

EVENT = encode_message(
    {":message-type": "event", ":event-type": "contentBlockDelta"},
    b'{"contentBlockIndex":0,"delta":{"text":"Hel"}}',
)
EXCEPTION = encode_message(
    {":message-type": "exception", ":exception-type": "throttlingException"},
    b'{"message":"Too many requests"}',
)


def frame_by_hand(header_bytes: bytes, payload: bytes) -> bytes:
    """A message built from the format's description, independently of `encode_message`."""
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + header_bytes + payload
    return head + struct.pack(">I", zlib.crc32(head))


def header(name: str, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + bytes([kind]) + value


def test_a_message_built_from_the_format_description_decodes() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = b"".join(
        (
            header("t", 0, b""),
            header("f", 1, b""),
            header("b", 2, struct.pack(">b", -5)),
            header("s", 3, struct.pack(">h", 300)),
            header("i", 4, struct.pack(">i", -70000)),
            header("l", 5, struct.pack(">q", 2**40)),
            header("a", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            header(":event-type", 7, struct.pack(">H", 12) + b"messageStart"),
            header("ts", 8, struct.pack(">q", 1_700_000_000_000)),
            header("u", 9, ident.bytes),
        )
    )

    [message] = list(EventStreamDecoder().feed(frame_by_hand(headers, b'{"role":"assistant"}')))

    assert message.headers == {
        "t": True,
        "f": False,
        "b": -5,
        "s": 300,
        "i": -70000,
        "l": 2**40,
        "a": b"\x00\x01\x02",
        ":event-type": "messageStart",
        "ts": 1_700_000_000_000,
        "u": ident,
    }
    assert message.payload == b'{"role":"assistant"}'
    assert message.header(":event-type") == "messageStart"
    assert message.header(":missing") == ""


def test_the_encoder_writes_what_the_format_describes() -> None:
    headers = header(":message-type", 7, struct.pack(">H", 5) + b"event")
    assert encode_message({":message-type": "event"}, b"{}") == frame_by_hand(headers, b"{}")


def test_frames_split_at_every_byte_boundary() -> None:
    stream = EVENT + EXCEPTION + EVENT
    expected = list(EventStreamDecoder().feed(stream))
    assert [m.header(":message-type") for m in expected] == ["event", "exception", "event"]

    for cut in range(len(stream) + 1):
        decoder = EventStreamDecoder()
        messages = [*decoder.feed(stream[:cut]), *decoder.feed(stream[cut:])]
        decoder.close()
        assert messages == expected, cut


def test_one_byte_at_a_time() -> None:
    decoder = EventStreamDecoder()
    messages: list[Message] = []
    for byte in EVENT + EXCEPTION:
        messages += decoder.feed(bytes([byte]))
    decoder.close()
    assert [m.header(":exception-type") for m in messages] == ["", "throttlingException"]


@pytest.mark.parametrize("at", [0, 5, 8, 9, 11])
def test_a_bad_prelude_crc_is_an_error_before_its_lengths_are_believed(at: int) -> None:
    broken = bytearray(EVENT)
    broken[at] ^= 0x01
    with pytest.raises(EventStreamError, match="prelude CRC"):
        # Only the prelude has arrived: a corrupt length must not make the decoder wait on.
        list(EventStreamDecoder().feed(bytes(broken[:12])))


@pytest.mark.parametrize("at", [12, 20, -10, -1])
def test_a_bad_message_crc_is_an_error(at: int) -> None:
    broken = bytearray(EVENT)
    broken[at] ^= 0x80
    with pytest.raises(EventStreamError, match="message CRC"):
        list(EventStreamDecoder().feed(bytes(broken)))


def test_a_message_cut_short_is_an_error_at_the_end() -> None:
    decoder = EventStreamDecoder()
    assert len(list(decoder.feed(EVENT + EXCEPTION[:-3]))) == 1
    with pytest.raises(EventStreamError, match="ended inside a message"):
        decoder.close()


@pytest.mark.parametrize(
    ("total", "headers"),
    [(15, 0), (40, 30), (12 + 200_000 + 4, 200_000), (12 + 4 + 17 * 1024 * 1024, 0)],
    ids=["shorter_than_a_message", "headers_past_the_end", "huge_headers", "huge_payload"],
)
def test_impossible_lengths_are_errors(total: int, headers: int) -> None:
    lengths = struct.pack(">II", total, headers)
    prelude = lengths + struct.pack(">I", zlib.crc32(lengths))
    with pytest.raises(EventStreamError, match="impossible"):
        list(EventStreamDecoder().feed(prelude))


def test_headers_that_run_past_their_length_are_an_error() -> None:
    bad = bytes([3]) + b"abc" + bytes([7]) + struct.pack(">H", 50) + b"short"
    with pytest.raises(EventStreamError, match="past the headers"):
        list(EventStreamDecoder().feed(frame_by_hand(bad, b"")))


def test_an_unknown_header_type_is_an_error() -> None:
    with pytest.raises(EventStreamError, match="unknown header value type 12"):
        list(EventStreamDecoder().feed(frame_by_hand(header("x", 12, b""), b"")))
