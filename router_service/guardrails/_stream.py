"""Screening a streamed answer as it goes: a find may span any number of deltas.

Each text of each choice (its content, its refusal, each tool call's arguments or custom input,
a function call's arguments) is a TextScreen. It holds back the last HOLD_BACK_CHARS characters
it was sent (a find ending there could still grow, or begin) and, each time RELEASE_STEP_CHARS more
arrived, releases everything before them, finds replaced. A find that began before that point
and still reaches into it holds the text back from its own start until it ends (a PEM block, a
long pattern match), up to MAX_HELD_CHARS: past it, the find is replaced as it stands and
what follows read as its continuation (`TextScreen`: bounded memory). When its choice
finishes, a text is flushed whole.
So every find of at most HOLD_BACK_CHARS characters, and every longer one whose first
HOLD_BACK_CHARS characters already are a find, is caught whole, and so is a built-in's that the
text's end may still be inside (`Rule.opened`: a PEM block before its END line, an email's long
name part), held from its start; what is held costs the stream's text 128 to 159 characters of
latency (the whole answer, when it is shorter).

`redact`: finds replaced in the relayed deltas. `block`: the choice's held text is dropped
(what was released before stays: it held no find), its chunk ends it with finish_reason
`content_filter`, and whatever the upstream sends for it afterwards is dropped; once every
choice ended and a block ended one, `cut` tells the relay to stop reading the upstream (its
call is closed). Logprobs are dropped from a screened stream: their tokens are the raw text.
The reasoning a delta carries (`reasoning_content`, `reasoning`: texts of their own; an entry
OpenRouter gives as pieces, `reasoning_details`: a text of its own too, `_stream_pieces`; signed
thinking blocks: whole) is screened too, and released before the answer that follows it.
So is an answer's spoken output (`_audio`: held whole until its choice finishes). So are a
Claude deployment's own blocks, each whole on its chunk (`_claude_blocks`). Content parts in a
delta (no provider streams them) and other unmodelled keys are not screened.
Claude's own block boundaries in a delta (a server tool block, a text block's start:
BLOCK_KEY, TEXT_BLOCK_KEY) and a Responses upstream's hosted items' events (HOSTED_EVENTS) pass
as they come, so what the choice's texts hold is released, screened, in a chunk of its own
before them: else the text before would reach the caller after (inside a cited text block).
But the hosted events that stream a call's arguments or code in pieces (`.delta`): a text of
their own, held back as the content is (`_stream_pieces`).
An annotation waits for the text it cites, then goes out moved by its finds (`HeldCitations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from clients.codec._responses_custom import REASONING_ITEMS
from clients.codec._responses_hosted import HOSTED_EVENTS
from clients.codec.anthropic import BLOCK_KEY, TEXT_BLOCK_KEY
from clients.switchboard.v1 import chat_pb2
from router_service.errors import GuardrailBlockedError
from router_service.guardrails._audio import HeldAudio
from router_service.guardrails._citations import HeldCitations, StreamEdits
from router_service.guardrails._claude_blocks import StreamBlocks
from router_service.guardrails._finds import withhold
from router_service.guardrails._stream_parts import says_something, set_refusal
from router_service.guardrails._stream_pieces import (
    channels_of,
    hosted_pieces_only,
    is_piece_channel,
    screen_pieces,
    whole_blocks,
    with_piece,
)
from router_service.guardrails._texts import ANSWER_REASONING_KEYS as BLOCK_KEYS
from router_service.guardrails._texts import REASONING_KEYS, json_object, reasoning_slots

if TYPE_CHECKING:
    from router_service.guardrails._answers import AnswerGuard
    from router_service.guardrails._text_screen import TextScreen

__all__ = ["StreamScreen"]

_CLAUDE_BOUNDARIES = (f'"{BLOCK_KEY}"', f'"{TEXT_BLOCK_KEY}"')
_BOUNDARIES = (*_CLAUDE_BOUNDARIES, f'"{HOSTED_EVENTS}"')

Chunk = chat_pb2.ChatCompletionChunk
# A choice's text: (choice index, "content" | "refusal" | "function" | a tool call's index |
# a reasoning key, e.g. "reasoning_content").
Channel = tuple[int, str | int]


class StreamScreen:
    """One stream's choices, screened chunk by chunk (chunks are changed in place)."""

    __slots__ = (
        "_audio",
        "_blocks",
        "_choices",
        "_cites",
        "_ended",
        "_guard",
        "_templates",
        "_texts",
        "_withheld",
        "cut",
    )

    def __init__(self, guard: AnswerGuard, choices: int) -> None:
        self._guard = guard
        self._choices = max(1, choices)
        self._texts: dict[Channel, TextScreen] = {}
        self._ended: set[int] = set()  # choices that finished or were withheld
        # Choices a find in reasoning blocks withheld: (rule, detector).
        self._withheld: dict[int, tuple[str, str]] = {}
        self._blocks = StreamBlocks(guard)
        self._cites: dict[int, HeldCitations] = {}  # each choice's, until their text is out
        self._audio = HeldAudio()
        self._templates: dict[Channel, dict[str, Any]] = {}  # a piece's, by its channel
        self.cut = False

    def chunks(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        """The chunks as the caller may see them; a chunk left with nothing to say is dropped."""
        out: list[Chunk] = []
        for chunk in chunks:
            released = self._before_boundary(chunk)
            if released is not None:
                out.append(released)
            if self._chunk(chunk):
                out.append(chunk)
        return out

    def _before_boundary(self, chunk: Chunk) -> Chunk | None:
        """The text its choices held, released in a chunk of its own with the annotations
        that cite it, when `chunk` starts a Claude block (a server tool's, a text block; a
        hosted item's event): text before it."""
        before: Chunk | None = None
        for choice in chunk.choices:
            extra = choice.delta.extra_json
            if not extra or choice.index in self._ended:
                continue  # (most deltas: no unmodelled keys, one check)
            if not any(key in extra for key in _BOUNDARIES) or _pieces_only(extra):
                continue
            delta = chat_pb2.ChatMessage()
            self._flush(choice.index, delta, set())
            self._cite(choice.index, delta, False)
            held = [t for k, t in self._texts.items() if k[0] == choice.index]
            if delta.ByteSize() and not any(t.blocked for t in held):  # else withheld next
                if before is None:
                    before = Chunk(id=chunk.id, created=chunk.created, model=chunk.model)
                before.choices.add(index=choice.index, delta=delta)
        return before

    def _chunk(self, chunk: Chunk) -> bool:
        if not chunk.choices:
            return True  # the usage chunk, an annotation chunk
        blocked = False
        for i in reversed(range(len(chunk.choices))):
            choice = chunk.choices[i]
            if choice.index in self._ended:
                del chunk.choices[i]  # what an upstream sends for a choice after its end
                continue
            blocked = self._choice(choice) or blocked
            if not says_something(choice):
                del chunk.choices[i]
        if blocked and all(index in self._ended for index in range(self._choices)):
            self.cut = True
        return bool(chunk.choices) or chunk.HasField("usage") or bool(chunk.extra_json)

    def _choice(self, choice: chat_pb2.ChunkChoice) -> bool:
        """Screen one choice's delta; whether a block rule withheld the choice."""
        index = choice.index
        final = bool(choice.finish_reason or choice.finish_reason_raw)
        choice.ClearField("logprobs_json")
        self._audio.take(index, choice.delta)  # held whole until the choice finishes
        touched = self._delta(index, choice.delta, final)
        if '"annotations"' in choice.delta.extra_json:  # held until the text they cite is out
            held = self._cites.setdefault(index, HeldCitations())
            choice.delta.extra_json = held.take(choice.delta.extra_json)
        if final:
            self._flush(index, choice.delta, touched)
            self._release_audio(index, choice.delta)
        self._cite(index, choice.delta, final)
        blocked = [t.blocked for k, t in self._texts.items() if k[0] == index and t.blocked]
        if index in self._withheld:
            blocked.append(self._withheld.pop(index))
        if blocked:
            rule, detector = blocked[0]
            withhold(choice, choice.delta)
            self._guard.withheld(rule, detector)
        if blocked or final:
            self._ended.add(index)
            self._cites.pop(index, None)
            self._audio.drop(index)
            for key in [k for k in self._texts if k[0] == index]:
                del self._texts[key]
                self._templates.pop(key, None)
        return bool(blocked)

    def _release_audio(self, index: int, delta: chat_pb2.ChatMessage) -> None:
        """The choice's held audio on its last delta, its transcript screened: a find withholds
        the choice (`_audio`)."""
        slot = self._audio.release(index, delta, f"choices[{index}].delta")
        if slot is None:
            return
        try:
            self._guard.screen((slot,))
        except GuardrailBlockedError as exc:
            self._withheld.setdefault(index, (exc.guardrail, exc.detector))

    def _delta(self, index: int, delta: chat_pb2.ChatMessage, final: bool) -> set[Channel]:
        """Screen the texts a delta carries; the channels it touched."""
        touched: set[Channel] = set()
        self._reasoning(index, delta, final, touched)
        if delta.WhichOneof("content") == "text":
            delta.text = self._feed((index, "content"), delta.text, final, touched)
        if delta.HasField("refusal"):
            set_refusal(delta, self._feed((index, "refusal"), delta.refusal, final, touched))
        if delta.HasField("function_call"):
            call = delta.function_call
            call.arguments = self._feed((index, "function"), call.arguments, final, touched)
            if not (call.name or call.arguments):
                delta.ClearField("function_call")
        for k in reversed(range(len(delta.tool_calls))):
            tool = delta.tool_calls[k]
            at = tool.index if tool.HasField("index") else k
            extra = json_object(tool.extra_json) if tool.extra_json else None
            custom = extra.get("custom") if extra is not None else None
            if isinstance(custom, dict) and isinstance(custom.get("input"), str):
                custom["input"] = self._feed(
                    (index, f"custom{at}"), custom["input"], final, touched
                )
                tool.extra_json = orjson.dumps(extra).decode()
                continue  # a custom tool's call: its input is its text
            arguments = self._feed((index, at), tool.function.arguments, final, touched)
            tool.function.arguments = arguments
            if not (arguments or tool.id or tool.type or tool.function.name or tool.extra_json):
                del delta.tool_calls[k]  # a fragment of held arguments only
        return touched

    def _reasoning(
        self, index: int, delta: chat_pb2.ChatMessage, final: bool, touched: set[Channel]
    ) -> None:
        """The reasoning a delta carries in its unmodelled keys (`REASONING_KEYS`): a string is
        a text of its own, screened as it goes; reasoning blocks (signed thinking blocks, sent
        whole) are screened whole, a block's find (or a find in a signed one) withholding the
        choice. Reasoning comes before the answer: once a delta carries the answer (content,
        refusal, calls), what the reasoning held is released first, in this delta."""
        extra = json_object(delta.extra_json) if delta.extra_json else None
        if extra is None and delta.extra_json:
            return  # no JSON object: nothing of it is reasoning
        # An empty `content` beside reasoning (some servers send `"content": ""` on every
        # delta) is no answer yet.
        answering = bool(
            (delta.WhichOneof("content") == "text" and delta.text)
            or delta.HasField("parts")
            or delta.refusal
            or delta.tool_calls
            or delta.HasField("function_call")
            or REASONING_ITEMS in delta.extra_json  # a Responses upstream's item: its own ends
        )
        held = [k for k in self._texts if k[0] == index and _reasoning_channel(k[1])]
        if extra is None and not (held and (answering or final)):
            return
        extra = {} if extra is None else extra
        for key in REASONING_KEYS:
            value = extra.get(key)
            if isinstance(value, str) or (value is None and (index, key) in held):
                text = self._feed((index, key), value or "", final or answering, touched)
                if text:
                    extra[key] = text
                else:
                    extra.pop(key, None)
        flushing = final or answering
        signed = screen_pieces(
            index,
            extra,
            lambda channel, text, ends: self._feed(channel, text, flushing or ends, touched),
            self._templates,
            held,
        )
        for prefix in signed:
            for channel in channels_of(prefix, iter(self._texts), index):
                self._texts[channel].sign()
        blocks = whole_blocks(extra, BLOCK_KEYS)
        if blocks:
            try:
                self._guard.screen(reasoning_slots(blocks, f"choices[{index}].delta"))
            except GuardrailBlockedError as exc:
                self._withheld[index] = (exc.guardrail, exc.detector)
        withheld = self._blocks.screen(index, extra)
        if withheld is not None:
            self._withheld.setdefault(index, withheld)
        delta.extra_json = orjson.dumps(extra).decode() if extra else ""

    def _feed(self, key: Channel, text: str, final: bool, touched: set[Channel]) -> str:
        touched.add(key)
        screen = self._texts.get(key)
        if screen is None:
            if not text and not final:
                return ""
            # Here, not at the top: with the rules, the detectors it reads (a router without
            # rules loads neither; test_idle_imports.py). Once per channel of a screened stream.
            from router_service.guardrails._text_screen import TextScreen

            screen = self._texts[key] = TextScreen(self._guard.rules, self._guard.found)
        return screen.feed(text, final=final)

    def _cite(self, index: int, delta: chat_pb2.ChatMessage, final: bool) -> None:
        """The choice's held annotations whose text was released (all once it `final`ly
        flushed), added to `delta`, moved by the redactions."""
        held = self._cites.get(index)
        screen = self._texts.get((index, "content"))
        if held is not None:
            edits = StreamEdits() if screen is None else screen.edits
            delta.extra_json = held.give(delta.extra_json, edits, final)

    def _flush(self, index: int, delta: chat_pb2.ChatMessage, touched: set[Channel]) -> None:
        """The choice finished: the held text of its texts this delta did not carry, added."""
        for key, screen in list(self._texts.items()):
            if key[0] != index or key in touched:
                continue
            rest = screen.feed("", final=True)
            if not rest:
                continue
            what = key[1]
            if is_piece_channel(what):  # a reasoning entry's pieces: one more of them
                template = self._templates.get(key, {})
                delta.extra_json = with_piece(delta.extra_json, str(what), rest, template)
            elif what in REASONING_KEYS:  # a reasoning text held while a Claude block began
                extra = json_object(delta.extra_json) or {}
                extra[str(what)] = str(extra.get(what) or "") + rest
                delta.extra_json = orjson.dumps(extra).decode()
            elif what == "content":
                delta.text = delta.text + rest if delta.WhichOneof("content") == "text" else rest
            elif what == "refusal":
                set_refusal(delta, delta.refusal + rest)
            elif what == "function":
                delta.function_call.arguments += rest
            elif isinstance(what, str):  # a custom call's input
                custom = orjson.dumps({"custom": {"input": rest}}).decode()
                delta.tool_calls.add(index=int(what.removeprefix("custom")), extra_json=custom)
            else:
                delta.tool_calls.add(
                    index=int(what), function=chat_pb2.FunctionCall(arguments=rest)
                )


def _reasoning_channel(what: str | int) -> bool:
    """Whether a channel is a text of the reasoning: a key's string, or an entry's pieces."""
    return what in REASONING_KEYS or is_piece_channel(what)


def _pieces_only(extra_json: str) -> bool:
    """Whether a delta's only boundary is hosted events that are pieces of a call's text (held
    as the answer's texts are: no boundary)."""
    if any(mark in extra_json for mark in _CLAUDE_BOUNDARIES):
        return False
    return hosted_pieces_only(json_object(extra_json))
