"""Screening a streamed transcription (`stream: true`) as it goes, with the chat stream's
hold-back screen (`_stream.StreamScreen`): the transcript is one choice whose text is the
`delta` of each `transcript.text.delta` event.

What a delta event carries is released as the screen releases it (finds replaced, up to 159
characters held back), so a delta event may carry more or less text than the upstream's, or be
dropped while its text is held; `transcript.text.done` first flushes what is held (as one more
delta event), and its `text` is then the transcript as released (a stream of no deltas: its own
`text`, screened whole). Logprobs are dropped (their tokens are the raw text), as from a
screened chat stream. A `block` rule's find ends the stream with GuardrailBlockedError (what
was released before held no find); an event with text this screen cannot follow (a diarized
`transcript.text.segment`) ends it with InvalidRequestError: refused, never relayed unscreened.
An upstream that answers whole rather than streaming (`whisper-1` ignores `stream`: one JSON
or text body, no events) is screened whole (`whole`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clients.switchboard.v1 import chat_pb2, media_pb2
from router_service.errors import GuardrailBlockedError, InvalidRequestError

if TYPE_CHECKING:
    from router_service.guardrails._answers import AnswerGuard

__all__ = ["TranscriptScreen"]

_DELTA = "transcript.text.delta"
_DONE = "transcript.text.done"


class TranscriptScreen:
    """One streamed transcript: `event` each upstream event; what comes back may be sent."""

    __slots__ = ("_deltas", "_guard", "_released", "_screen")

    def __init__(self, guard: AnswerGuard) -> None:
        self._guard = guard
        self._screen = guard.stream(1)
        self._released: list[str] = []
        self._deltas = False  # whether a delta came (else `done`'s text is the transcript)

    def event(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The events to send for the upstream's `data`, in order (none while text is held)."""
        kind = data.get("type")
        if kind == _DELTA:
            self._deltas = True
            text = self._feed(str(data.get("delta") or ""), final=False)
            if not text:
                return []
            delta = {k: v for k, v in data.items() if k != "logprobs"}
            delta["delta"] = text
            return [delta]
        if kind == _DONE:
            # No delta came: the transcript is the `done` event's own text, screened whole.
            whole = "" if self._deltas else str(data.get("text") or "")
            rest = self._feed(whole, final=True)
            done = {k: v for k, v in data.items() if k != "logprobs"}
            done["text"] = "".join(self._released)
            return ([{"type": _DELTA, "delta": rest}] if rest and not whole else []) + [done]
        if any(isinstance(v, str) for k, v in data.items() if k != "type"):
            raise _unscreenable(f"`{kind}` events")
        return [data]

    def whole(self, chunk: media_pb2.MediaChunk) -> None:
        """A piece of no event, screened in place: the whole answer of an upstream that does
        not stream it (`whisper-1` ignores `stream`), JSON or text (`text`, `srt`, `vtt`: read
        whole, `media_pieces`), as a unary answer is (a block rule's find raises
        GuardrailBlockedError). Another body comes in pieces as it arrives, which this screen
        cannot follow: refused (InvalidRequestError), never relayed unscreened."""
        kind = chunk.content_type.partition(";")[0].strip().lower()
        if kind != "application/json" and not kind.startswith("text/"):
            raise _unscreenable("body")
        result = media_pb2.MediaResult(content_type=chunk.content_type, body=chunk.data)
        self._guard.transcript(result)
        chunk.data = result.body

    def _feed(self, text: str, *, final: bool) -> str:
        choice = chat_pb2.ChunkChoice(index=0, delta=chat_pb2.ChatMessage(text=text))
        if final:
            choice.finish_reason = chat_pb2.FINISH_REASON_STOP
        released = self._screen.chunks([chat_pb2.ChatCompletionChunk(choices=[choice])])
        if self._screen.cut:  # a block rule withheld the transcript
            rule, detector = self._guard.blocked()
            raise GuardrailBlockedError(rule, detector, param="text", answer=True)
        out = "".join(c.delta.text for chunk in released for c in chunk.choices)
        self._released.append(out)
        return out


def _unscreenable(what: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The answer's {what} cannot be screened by the answer guardrails as it streams: "
        "ask without `stream` (the whole answer is screened).",
        param="stream",
        code="content_policy_violation",
    )
