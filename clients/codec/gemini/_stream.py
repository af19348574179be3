"""OpenAI `chat.completion.chunk`s (as `chunk_to_openai` writes them) → the
GenerateContentResponse chunks of Gemini's streamGenerateContent.

Followed: https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent and
https://ai.google.dev/gemini-api/docs/text-generation#streaming: each chunk a
GenerateContentResponse whose candidates hold the new parts; the last one with each
candidate's finishReason and the usageMetadata, and the last text (a response is held until
the next one comes, so the SDK's `chunk.text` of the last chunk is text, as Gemini's is, not
None). Gemini streams a function call whole, in one part, where OpenAI streams its arguments in
pieces: a call is sent once complete, with the last chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clients.codec._tool_pieces import StreamedCall
from clients.codec.gemini._response import (
    call_part,
    finish_reason,
    logprobs_to_gemini,
    text_parts,
    usage_to_gemini,
)
from clients.codec.gemini._tables import thought_signature

__all__ = ["ResponseChunks"]

JsonObject = dict[str, Any]


@dataclass
class _Candidate:
    calls: dict[int, StreamedCall] = field(default_factory=dict)  # OpenAI's tool call index → call
    finish: Any = None


class ResponseChunks:
    """One stream's chunks: feed it OpenAI's (`chunk`), end it with `finish`; the reasoning
    deltas as thought parts when `thoughts` were asked for (`include_thoughts`)."""

    def __init__(self, model: str, thoughts: bool = False) -> None:
        self._model = model
        self._thoughts = thoughts
        self._id = ""
        self._candidates: dict[int, _Candidate] = {}
        self._usage: Mapping[str, Any] | None = None
        self._held: JsonObject | None = None  # the last response with parts, not yet sent
        self._said = False  # a response with parts was made (sent, or held to be)

    @property
    def said(self) -> bool:
        """Whether the stream has said anything yet: a response with parts, sent or held."""
        return self._said

    def chunk(self, chunk: Mapping[str, Any]) -> list[JsonObject]:
        """The GenerateContentResponse to send now: the one held, when `chunk` has new parts
        (then held in its place)."""
        self._id = self._id or str(chunk.get("id") or "")
        self._model = str(chunk.get("model") or self._model)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        candidates = []
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index") or 0)
            candidate = self._candidates.setdefault(index, _Candidate())
            parts = self._delta(candidate, choice.get("delta") or {})
            if choice.get("finish_reason"):
                candidate.finish = choice["finish_reason"]
            if parts:
                # The chunk's tokens' logprobs (when asked for), as a whole answer carries its own.
                content = {"role": "model", "parts": parts}
                logprobs = logprobs_to_gemini(choice.get("logprobs"))
                candidates.append({"content": content, **logprobs, "index": index})
        if not candidates:
            return []
        self._said = True
        ready = self.pending()
        self._held = self._response(candidates)
        return ready

    def pending(self) -> list[JsonObject]:
        """The response held, to send before a failed stream's error."""
        held, self._held = self._held, None
        return [held] if held is not None else []

    def finish(self, usage: Mapping[str, Any] | None = None) -> JsonObject:
        """The last chunk: the parts held (with their tokens' logprobs), the complete function
        calls, each candidate's finishReason, and the usage (OpenAI's; `usage` when the stream's
        chunks had none)."""
        held = {c["index"]: c for r in self.pending() for c in r["candidates"]}
        candidates = []
        for index, candidate in sorted((self._candidates or {0: _Candidate()}).items()):
            calls = [candidate.calls[i] for i in sorted(candidate.calls)]
            last = held.get(index, {})
            parts = list(last.get("content", {}).get("parts", ()))
            parts += [call_part(c.id, c.name, "".join(c.arguments), c.signature) for c in calls]
            logprobs = {k: v for k, v in last.items() if k not in ("content", "index")}
            candidates.append(
                {
                    "content": {"role": "model", "parts": parts},
                    **logprobs,
                    "finishReason": finish_reason(candidate.finish),
                    "index": index,
                }
            )
        response = self._response(candidates)
        response["usageMetadata"] = usage_to_gemini(self._usage or usage)
        return response

    def filtered(self) -> JsonObject:
        """The last chunk of a stream a content filter cut off after it said something: what
        was held, and each candidate not finished yet ending with SAFETY, as Gemini ends one
        its filter stops (no error). A function call it cut off is not said: its arguments may
        never have come whole, and the caller's client would run it."""
        self._candidates = self._candidates or {0: _Candidate()}
        for candidate in self._candidates.values():
            if not candidate.finish:
                candidate.finish = "content_filter"
                candidate.calls.clear()
        return self.finish()

    def _delta(self, candidate: _Candidate, delta: Mapping[str, Any]) -> list[JsonObject]:
        parts = text_parts(delta, self._thoughts)
        for piece in delta.get("tool_calls") or ():
            call = candidate.calls.setdefault(int(piece.get("index") or 0), StreamedCall())
            call.add(piece, thought_signature(piece))
        return parts

    def _response(self, candidates: list[JsonObject]) -> JsonObject:
        return {"candidates": candidates, "modelVersion": self._model, "responseId": self._id}
