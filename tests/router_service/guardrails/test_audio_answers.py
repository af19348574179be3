"""An answer's spoken output (`modalities: ["audio"]`: the message's `audio`, whose `transcript`
says what its `data` says) through the answer's guardrails: a find in the transcript withholds
the choice, audio and all (the audio cannot be redacted); a stream's audio is held until its
choice finishes, then sent whole or withheld with it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailConfig
from router_service.guardrails import AnswerGuard, Rule

pytestmark = pytest.mark.timeout(60)

EMAIL = "jane.doe@example.com"
SAID = f"Sure: write to {EMAIL} and they will answer."
DATA = "UklGRiQAAABXQVZFZm10IBAAAAABAAEA"  # base64 audio, its bytes no text
PII = Rule(GuardrailConfig.model_validate({"name": "pii", "detect": ["email"], "action": "redact"}))


def _answer(transcript: str) -> chat_pb2.ChatCompletion:
    audio = {"id": "audio_1", "data": DATA, "expires_at": 1, "transcript": transcript}
    message = chat_pb2.ChatMessage(
        role=chat_pb2.ROLE_ASSISTANT, extra_json=orjson.dumps({"audio": audio}).decode()
    )
    choice = chat_pb2.Choice(index=0, message=message, finish_reason_raw="stop")
    choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    return chat_pb2.ChatCompletion(id="x", choices=[choice])


def test_a_find_in_a_unary_answer_s_audio_transcript_withholds_the_choice() -> None:
    guard = AnswerGuard((PII,))
    completion = _answer(SAID)
    assert guard.completion(completion) == ("pii",)
    choice = completion.choices[0]
    assert choice.finish_reason_raw == "content_filter"
    assert not choice.message.extra_json  # neither the transcript nor the audio saying it


def test_a_unary_answer_s_audio_without_finds_is_kept_as_it_came() -> None:
    completion = _answer("Sure, the office opens at nine.")
    before = completion.SerializeToString()
    assert AnswerGuard((PII,)).completion(completion) == ()
    assert completion.SerializeToString() == before


def _chunk(finish: str = "", audio: dict[str, Any] | None = None) -> chat_pb2.ChatCompletionChunk:
    delta = chat_pb2.ChatMessage()
    if audio is not None:
        delta.extra_json = orjson.dumps({"audio": audio}).decode()
    choice = chat_pb2.ChunkChoice(index=0, delta=delta, finish_reason_raw=finish)
    if finish:
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    return chat_pb2.ChatCompletionChunk(id="c", choices=[choice])


def _spoken(transcript: str) -> list[chat_pb2.ChatCompletionChunk]:
    """OpenAI's audio stream: the transcript a few characters a delta, the data in pieces
    between them, then the expiry and the finish."""
    chunks = [_chunk(audio={"id": "audio_1", "transcript": ""})]
    for at in range(0, len(transcript), 4):
        chunks.append(_chunk(audio={"transcript": transcript[at : at + 4]}))
        chunks.append(_chunk(audio={"data": DATA}))
    return [*chunks, _chunk(audio={"expires_at": 1}), _chunk(finish="stop")]


def _relayed(chunks: list[chat_pb2.ChatCompletionChunk]) -> tuple[dict[str, Any], str]:
    """The audio as a client merges its pieces (strings joined), and the finish."""
    audio: dict[str, Any] = {}
    finish = ""
    for chunk in chunks:
        for choice in chunk.choices:
            extra = orjson.loads(choice.delta.extra_json) if choice.delta.extra_json else {}
            for key, value in extra.get("audio", {}).items():
                audio[key] = audio.get(key, "") + value if isinstance(value, str) else value
            finish = choice.finish_reason_raw or finish
    return audio, finish


def test_a_find_in_a_streamed_audio_transcript_withholds_the_choice_before_any_audio() -> None:
    guard = AnswerGuard((PII,))
    screen = guard.stream(1)
    chunks = _spoken(SAID)
    assert _relayed(screen.chunks(chunks[:-1])) == ({}, "")  # all of it held until the end
    assert _relayed(screen.chunks(chunks[-1:])) == ({}, "content_filter")
    assert guard.report() == ("pii",)


def test_a_streamed_audio_without_finds_goes_out_whole_with_its_finish() -> None:
    said = "Sure, the office opens at nine."
    out = AnswerGuard((PII,)).stream(1).chunks(_spoken(said))
    audio = {"id": "audio_1", "transcript": said, "data": DATA * 8, "expires_at": 1}
    assert _relayed(out) == (audio, "stop")


@pytest.mark.timeout(
    20
)  # the generous bound: held in linear work, this takes a fraction of a second
def test_a_long_spoken_answer_is_held_in_linear_work() -> None:
    """16 MiB of audio a KiB a delta (minutes of speech): joining the held data a delta at a
    time copied all of it again on each: minutes of the event loop's time."""
    piece = "UklG" * 256
    chunks = [_chunk(audio={"id": "audio_1", "transcript": "Sure, at nine."})]
    chunks += [_chunk(audio={"data": piece}) for _ in range(16 * 1024)]
    out = AnswerGuard((PII,)).stream(1).chunks([*chunks, _chunk(finish="stop")])
    audio, finish = _relayed(out)
    assert finish == "stop" and audio["transcript"] == "Sure, at nine."
    assert audio["data"] == piece * (16 * 1024)
