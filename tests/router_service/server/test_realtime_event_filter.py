"""The relay's test of whether a caller's realtime event may carry text (`_may_carry_text`):
sound: every event a guardrail must read is parsed, however its JSON is written, and an audio
append is not. What it costs against parsing is for benchmarks/README.md ("Realtime: the test
before screening a caller's event"), not a timed unit test."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from router_service.server._realtime_screening import _may_carry_text

AUDIO = base64.b64encode(os.urandom(750_000)).decode()  # ~15 s of 24 kHz pcm16
APPEND = orjson.dumps({"type": "input_audio_buffer.append", "event_id": "e1", "audio": AUDIO})


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"conversation.item.create","item":{}}',
        '{"event_id":"e1", "type" : "response.create"}',
        '{"type":"session.update","session":{}}',
        '{"type":"conversation\\u002eitem.create","item":{}}',  # an escaped type
        '{"type":"input_audio_buffer.append","type":"response.create"}',  # a repeated key
        '{"type":"input_audio_buffer.append","audio":"a\\/b"}',  # an escape: read whole
        '{"type":"response.create',  # no JSON: the parser says so
    ],
)
def test_an_event_that_may_carry_text_is_read(raw: str) -> None:
    assert _may_carry_text(raw)


@pytest.mark.parametrize(
    "raw",
    [
        APPEND.decode(),
        '{"type":"input_audio_buffer.commit"}',
        '{"type":"response.cancel","note":"session.updated"}',
    ],
)
def test_an_event_without_text_is_passed_on_unread(raw: str) -> None:
    assert not _may_carry_text(raw)
