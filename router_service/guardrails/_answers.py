"""Guardrails on the answer side: what a model's answer must not carry back to its caller.

Rules with `apply_to: [response]` screen every choice of a chat answer after the upstream answered
and before the answer is cached or returned (the engine's Executor asks them; legacy completions and
Responses API calls are chat calls there too): a choice's text content and text parts, its refusal,
its tool calls' and function call's arguments (a custom tool call's input), and the reasoning its
message carries (`reasoning_content`… in unmodelled keys; a find in a signed thinking block
withholds the choice: a rewritten one would fail its signature when handed back), and the readable
strings of the blocks a Claude deployment gave with it (`_claude_blocks`: a redact rule's find there
drops them), and the transcript of its spoken output (`_audio`: a find withholds the choice).
`redact` replaces a find by `[REDACTED:<detector>]` as on the request side; `block`
withholds the choice (no content, refusal, calls, logprobs nor unmodelled keys) and ends it with
finish_reason `content_filter`, and the call still succeeds, as Azure OpenAI's output filter does. A
choice a rule changed loses its logprobs (their tokens are the raw text). A stream is screened as it
goes (`_stream.py`). A transcription's answer (RouterService.Media) is screened whole
(`_transcripts.py`); having no finish_reason, a block refuses the call (GuardrailBlockedError); a
streamed one as it goes (`_transcript_stream.py`), a block ending its stream.

One AnswerGuard serves one call: it gathers the finds, and `report` counts them (metric
`switchboard.guardrail.matches`, side `response`), names the rules on the span and audits
them, once, by rule and detector, never the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Literal

import orjson

from clients.codec.anthropic import CONTENT_KEY
from clients.switchboard.v1 import chat_pb2, media_pb2
from router_service.config import GuardrailAction
from router_service.errors import GuardrailBlockedError
from router_service.guardrails._audio import audio_transcript
from router_service.guardrails._citations import cited_text, with_citations_moved
from router_service.guardrails._claude_blocks import claude_block_texts
from router_service.guardrails._finds import Found, screen_text, withhold
from router_service.guardrails._stream import StreamScreen
from router_service.guardrails._texts import (
    TextSlot,
    json_object,
    message_texts,
    reasoning_texts,
)
from router_service.guardrails._transcripts import transcript_texts
from router_service.telemetry import record_guardrail_matches

if TYPE_CHECKING:  # rules exist only where configured: their detectors load with them
    from router_service.guardrails._rules import Rule

__all__ = ["SCREENING", "AnswerAudit", "AnswerGuard"]

# What the screen covers, named in the response cache's key (`AnswerGuard.signature`): bumped
# when it comes to screen more of an answer, so that an answer kept (on a shared Redis, for up to
# `cache.ttl_s`) by a release whose screen let that part through unscreened is never served.
# 2: a spoken answer's transcript (`_audio`), a stream's reasoning pieces and hosted calls'
# argument pieces (`_stream_pieces`).
SCREENING = "screen-2"

# Audits what the rules did to one answer: (outcome, reason), e.g. ("answer_withheld",
# "guardrail:no-credentials:api_key") or ("answer_redacted", "guardrail:pii").
AnswerAudit = Callable[[Literal["answer_redacted", "answer_withheld"], str], None]


class AnswerGuard:
    """The response-side rules that apply to one call, and what they found in its answer."""

    __slots__ = (
        "_acted",
        "_audit",
        "_blocked",
        "_withheld",
        "actions",
        "found",
        "rules",
        "signature",
    )

    def __init__(self, rules: Sequence[Rule], audit: AnswerAudit | None = None) -> None:
        self.rules = tuple(rules)
        self.actions: dict[str, GuardrailAction] = {r.name: r.action for r in self.rules}
        # What the response cache keys this call's answer by: answers screened by other rules
        # (before a reload, on another replica) are never served to it.
        self.signature = f"{SCREENING}:" + ",".join(r.signature for r in self.rules)
        self.found: Found = {}
        self._withheld: list[str] = []  # "<rule>:<detector>" of each choice withheld
        self._blocked = ("", "")  # (rule, detector) of the last one
        self._audit = audit
        self._acted: tuple[str, ...] | None = None

    def completion(self, completion: chat_pb2.ChatCompletion) -> tuple[str, ...]:
        """Screen a unary answer's choices in place; the rules that acted (`report`)."""
        for i, choice in enumerate(completion.choices):
            self._choice(choice, f"choices[{i}].message")
        return self.report()

    def _choice(self, choice: chat_pb2.Choice, field: str) -> None:
        slots: list[TextSlot] = []
        cited = cited_text(choice.message)
        texts = chain(
            message_texts((choice.message,), field),
            _custom_inputs(choice.message, field),
            reasoning_texts(choice.message, field),
            claude_block_texts(choice.message, field),
            audio_transcript(choice.message, field),
        )
        try:
            # Screened as walked: the reasoning's JSON is written again once its last is done.
            self.screen(_noted(texts, slots))
        except GuardrailBlockedError as exc:
            withhold(choice, choice.message)
            self.withheld(exc.guardrail, exc.detector)
            return
        if any(slot.changed for slot in slots):
            choice.ClearField("logprobs_json")
            _without_claude_blocks(choice.message)
            if cited is not None:
                with_citations_moved(choice.message, cited, self.rules, self.actions)

    def transcript(self, result: media_pb2.MediaResult) -> tuple[str, ...]:
        """Screen a transcription's answer in place (`_transcripts`); the rules that acted.
        A block rule's find withholds it whole: GuardrailBlockedError naming the answer (after
        `report`), as there is no finish_reason to say so and nothing of it was sent yet."""
        try:
            self.screen(transcript_texts(result, self.rules))
        except GuardrailBlockedError as exc:
            self.withheld(exc.guardrail, exc.detector)
            self.report()
            param = exc.param or ""
            raise GuardrailBlockedError(
                exc.guardrail, exc.detector, param=param, answer=True
            ) from None
        return self.report()

    def screen(self, slots: Iterable[TextSlot]) -> None:
        for slot in slots:
            text = slot.text
            if text:
                screen_text(slot, text, self.rules, self.actions, self.found)

    def stream(self, choices: int) -> StreamScreen:
        """A screen for a stream of `choices` choices (`n`)."""
        return StreamScreen(self, choices)

    def withheld(self, rule: str, detector: str) -> None:
        """A block rule withheld a choice for a find of `detector` (counted in `found` by
        whoever found it)."""
        self._withheld.append(f"{rule}:{detector}")
        self._blocked = (rule, detector)

    def blocked(self) -> tuple[str, str]:
        """(rule, detector) of the last choice withheld."""
        return self._blocked

    def report(self) -> tuple[str, ...]:
        """The rules that acted on the answer, in config order; the first call counts their
        finds, names them on the span and audits them, later calls only repeat the names."""
        if self._acted is not None:
            return self._acted
        for name, counts in self.found.items():
            for detector, count in counts.items():
                record_guardrail_matches(name, self.actions[name], detector, count, "response")
        self._acted = tuple(r.name for r in self.rules if r.name in self.found)
        if self._audit is not None:
            if self._withheld:
                self._audit("answer_withheld", "guardrail:" + ",".join(self._withheld))
            redacted = [n for n in self._acted if self.actions[n] == "redact"]
            if redacted:
                self._audit("answer_redacted", "guardrail:" + ",".join(redacted))
        return self._acted


def _without_claude_blocks(message: chat_pb2.ChatMessage) -> None:
    """A redacted message loses the content blocks a Claude deployment gave with it (server
    tool blocks, cited text: `CONTENT_KEY`), which still say the text as it was: the answer is
    the message's own, redacted, text (what the Messages API entrance says then too)."""
    extra = json_object(message.extra_json) if CONTENT_KEY in message.extra_json else None
    if extra is not None and extra.pop(CONTENT_KEY, None) is not None:
        message.extra_json = orjson.dumps(extra).decode() if extra else ""


def _noted(texts: Iterable[TextSlot], into: list[TextSlot]) -> Iterator[TextSlot]:
    """`texts`, each noted in `into` as it is walked."""
    for slot in texts:
        into.append(slot)
        yield slot


def _custom_inputs(message: chat_pb2.ChatMessage, field: str) -> Iterator[TextSlot]:
    """The input of each custom tool call of `message` (its `{"custom": {"input"}}` extra):
    its text, as a function call's arguments are; the call's JSON written again when changed."""
    for k, call in enumerate(message.tool_calls):
        extra = json_object(call.extra_json) if "custom" in call.extra_json else None
        custom = extra.get("custom") if extra is not None else None
        if not isinstance(custom, dict) or not isinstance(custom.get("input"), str):
            continue
        slot = TextSlot(custom, "input", (field, "tool_calls", k, "custom", "input"), item=True)
        yield slot
        if slot.changed:
            call.extra_json = orjson.dumps(extra).decode()
