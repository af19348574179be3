"""Chat-completion chunks → the Responses API's stream events, as a small state machine.

OpenAI's Responses stream announces each output item before its deltas and closes it after
them: ``response.created``, ``response.in_progress``, then per item ``output_item.added``
(a message also ``content_part.added``), its deltas, its ``*.done`` events and
``output_item.done``, and last ``response.completed`` (or ``response.incomplete``; after a
failure ``error`` then ``response.failed``). Every event carries a ``sequence_number``.

Chat deltas map onto items as they come: reasoning text (``reasoning_content``) is a ``reasoning``
item, text a ``message`` item, each tool-call index a ``function_call`` item (a ``custom_tool_call``
for a custom tool's call). A Responses upstream's reasoning item (its ``reasoning_items``, when
encrypted reasoning was asked for) keeps its id, its text streamed as its summary
(``response.reasoning_summary_text.delta``), and ends as the upstream gave it. A message or
reasoning item is closed as soon as another kind of output starts; tool calls stay open until the
end (a provider may interleave their argument deltas). A refusal is a message item whose one part is
a ``refusal``, streamed with ``response.refusal.delta`` / ``.done``. OpenAI's hosted tools' items
and their events (``hosted_events``, _responses_hosted.py) are said as they came, in their place. An
answer of nothing but reasoning ends with an empty message item, as its unary Response has."""

from __future__ import annotations

from typing import Any

from clients.codec._response import chunk_to_openai, usage_to_openai
from clients.codec._responses_custom import (
    closes_reasoning,
    custom_of,
    reasoning_items_of,
    reasoning_output_item,
)
from clients.codec._responses_hosted import (
    HOSTED_EVENTS,
    HostedPlaces,
    annotations_of,
    moved_annotation,
)
from clients.codec._responses_include import output_logprobs
from clients.codec._responses_open import (
    CALL_EVENTS,
    DELTA_EVENTS,
    PART_EVENTS,
    PART_TYPES,
    OpenItem,
    closing_order,
    open_call_item,
)
from clients.codec._responses_output import (
    ResponseIds,
    asked_logprobs,
    envelope,
    finished,
    item_status,
    legacy_calls,
    message_item,
    reasoning_item,
    reasoning_text,
    text_part,
    usage_to_responses,
)
from clients.codec._responses_request import ResponsesRequest
from clients.codec._responses_thinking import asks_encrypted, carrying, signed_blocks
from clients.switchboard.v1 import chat_pb2

Event = dict[str, Any]


class ResponseEventStream:
    """Turns one ChatStream's chunks into Responses events (plain dicts, in order)."""

    def __init__(
        self, request: ResponsesRequest, ids: ResponseIds, created_at: int, sequence: int = 0
    ) -> None:
        self._request = request
        self._ids = ids
        self._created_at = created_at
        self._model = request.params.model
        self._sequence = sequence  # the next event's sequence_number
        self._output: list[dict[str, Any]] = []  # every item so far, in output order
        self._text: OpenItem | None = None  # the open message or reasoning item
        self._calls: dict[int, OpenItem] = {}  # open function calls by chat tool-call index
        self._counts = {"msg": 0, "rs": 0, "fc": 0, "ctc": 0}
        self._usage: dict[str, Any] | None = None
        self._finish: str | None = None
        self._logprobs = asked_logprobs(request)
        self._signed = asks_encrypted(request.params)  # Claude's signed thinking carried
        self._hosted = HostedPlaces(self._output)  # OpenAI's hosted tools' items, as they came
        self._said = 0  # the content's characters so far (its messages' texts joined)
        self._failure: tuple[str | None, str | None] | None = None  # `failing`'s code, param

    def start(self, model: str = "") -> list[Event]:
        """``response.created``, ``response.in_progress``: naming `model` (a first chunk's)."""
        self._model = model or self._model
        return [
            self._event("response.created", response=self._snapshot("in_progress")),
            self._event("response.in_progress", response=self._snapshot("in_progress")),
        ]

    def feed(self, chunk: chat_pb2.ChatCompletionChunk) -> list[Event]:
        """The events of one chat chunk (often one ``output_text.delta``)."""
        body = chunk_to_openai(chunk)
        if body.get("model") and self._model == self._request.params.model:
            self._model = body["model"]
        if body.get("usage"):
            self._usage = body["usage"]
        events: list[Event] = []
        for choice in body["choices"][:1]:  # a Response has one output; `n` has no place here
            delta = choice.get("delta") or {}
            items = reasoning_items_of(delta)
            parts = [i for i in items if isinstance(i.get("summary_index"), int)]
            for item in items:  # an upstream's reasoning item opened: its summary goes into it
                opens = not (closes_reasoning(item) or item in parts)
                events += self._reasoning_item(item) if opens else []
            reasoning = reasoning_text(delta)
            if parts and reasoning is not None:  # the paragraph a chat caller sees between parts
                reasoning = reasoning.removesuffix("\n\n") or None
            if reasoning is not None:
                summary = self._text is not None and self._text.kind == "summary"
                events += self._text_delta("summary" if summary else "reasoning", reasoning)
            for item in parts:  # after the words of the part before it
                events += self._summary_part(item)
            for item in items:  # closed after the summary beside it (what a screen held back)
                events += self._reasoning_item(item) if closes_reasoning(item) else []
            if self._signed:
                events += self._signed_thinking(signed_blocks(delta))
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._said += len(content)
                logprobs = output_logprobs(choice) if self._logprobs else []
                events += self._text_delta("message", content, logprobs)
            if isinstance(refusal := delta.get("refusal"), str) and refusal:
                events += self._text_delta("refusal", refusal)
            for call in delta.get("tool_calls") or legacy_calls(delta):
                events += self._call_delta(call)
            for event in delta.get(HOSTED_EVENTS) or []:
                events += self._hosted_event(event)
            for annotation in annotations_of(delta):
                events += self._annotation(annotation)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def usage(self, usage: chat_pb2.Usage) -> None:
        """The router's own count (its stream summary), when no chunk carried one."""
        if self._usage is None:
            self._usage = usage_to_openai(usage, "usage")

    def queued(self) -> list[Event]:
        """A background stream's opening: ``response.created``, ``response.queued`` (queued)."""
        return [
            self._event("response.created", response=self._snapshot("queued")),
            self._event("response.queued", response=self._snapshot("queued")),
        ]

    def in_progress(self) -> list[Event]:
        return [self._event("response.in_progress", response=self._snapshot("in_progress"))]

    def finish(self, completed_at: int) -> list[Event]:
        """Close what is open, then ``response.completed`` or ``response.incomplete``."""
        return [*self.close(), *self.end(self.answered(completed_at))]

    def close(self) -> list[Event]:
        """The ``*.done`` events of the items still open (the answer has ended); an answer with
        no item but reasoning gets an empty message, as a unary one has (`response_to_openai`)."""
        events = self._close_text()
        events += [e for call in closing_order(self._calls) for e in self._close_call(call)]
        self._calls.clear()
        if all(item.get("type") == "reasoning" for item in self._output):
            events += [*self._open_text("message"), *self._close_text()]
        return events

    def answered(self, completed_at: int) -> dict[str, Any]:
        """The Response the stream answered: ``completed`` or ``incomplete``, with its usage."""
        response = self._snapshot("completed")
        response["usage"] = usage_to_responses(self._usage)
        finished(response, self._finish, completed_at)
        return response

    def end(self, response: dict[str, Any]) -> list[Event]:
        """The event that ends the stream with `response` as it finished: by its status
        ``response.completed``, ``.incomplete``, ``.cancelled``, or ``error`` then
        ``response.failed``."""
        status = str(response["status"])
        if status == "failed":
            error = response.get("error") or {}
            code, param = self._failure or (error.get("code"), None)
            return [
                self._event("error", code=code, message=error.get("message", ""), param=param),
                self._event("response.failed", response=response),
            ]
        return [self._event(f"response.{status}", response=response)]

    def failing(self, code: str | None, param: str | None = None) -> None:
        """The `error` event's code and param when :meth:`end` fails the stream, as in `fail`."""
        self._failure = (code, param)

    def fail(self, message: str, code: str | None, param: str | None = None) -> list[Event]:
        """After the commit a failure is an ``error`` event, then ``response.failed``: its
        Response not kept (only an answer is), so ``store`` false, as one not kept says."""
        response = {**self._snapshot("failed"), "store": False}
        # Response.error.code is one of OpenAI's own codes: the detail is in the `error` event.
        known = "rate_limit_exceeded" if code == "rate_limit_exceeded" else "server_error"
        response["error"] = {"code": known, "message": message}
        self.failing(code, param)
        return self.end(response)

    # --- items -----------------------------------------------------------------------------

    def _text_delta(
        self, kind: str, delta: str, logprobs: list[dict[str, Any]] | None = None
    ) -> list[Event]:
        events: list[Event] = []
        if self._text is None or self._text.kind != kind:
            events += self._close_text()
            events += self._open_text(kind)
        assert self._text is not None
        if kind == "summary" and not self._text.part_text:  # a summary part's first words
            part = {"type": "summary_text", "text": ""}
            events.append(
                self._event(f"{PART_EVENTS[kind]}.added", **self._where(self._text), part=part)
            )
        self._text.pieces.append(delta)
        self._text.logprobs += logprobs or []
        name = DELTA_EVENTS[kind]
        extra: dict[str, Any] = {"logprobs": logprobs or []} if kind == "message" else {}
        events.append(self._event(name, **self._where(self._text), delta=delta, **extra))
        return events

    def _open_text(self, kind: str, item_id: str = "") -> list[Event]:
        """Open a text item; `item_id`: an upstream's reasoning item's id, kept."""
        prefix = "rs" if kind in ("reasoning", "summary") else "msg"
        item = self._new(kind, prefix)
        item.item_id = item_id or item.item_id
        self._text = item
        if kind == "message":
            snapshot, part = message_item(item.item_id, "in_progress", []), text_part("")
        elif kind == "refusal":
            snapshot = message_item(item.item_id, "in_progress", [])
            part = {"type": "refusal", "refusal": ""}
        else:
            snapshot = reasoning_item(item.item_id, "in_progress", None)
            part = {"type": PART_TYPES[kind], "text": ""}
        self._output.append(snapshot)
        events = [self._event("response.output_item.added", output_index=item.index, item=snapshot)]
        if kind == "summary":  # its part opens with its first words: none for no summary
            return events
        opened = f"{PART_EVENTS.get(kind, 'response.content_part')}.added"
        return [*events, self._event(opened, **self._where(item), part=part)]

    def _reasoning_item(self, item: dict[str, Any]) -> list[Event]:
        """An upstream's reasoning item: its id opens it (its summary then streams into it),
        the whole item (encrypted content, summary) closes it as it is."""
        item_id = str(item.get("id", ""))
        events: list[Event] = []
        if self._text is None or self._text.item_id != item_id:
            events += self._close_text()
            events += self._open_text("summary", item_id)
        if closes_reasoning(item):
            events += self._close_text(reasoning_output_item(item))
        return events

    def _summary_part(self, item: dict[str, Any]) -> list[Event]:
        """A later part of the open summary (an upstream's: `summary_index`): the part before it
        is done; the next opens with its first words."""
        open_ = self._text
        if open_ is None or open_.kind != "summary" or open_.item_id != str(item.get("id", "")):
            return []
        events = self._part_done(open_)
        open_.part, open_.part_start = int(item["summary_index"]), len(open_.pieces)
        return events

    def _part_done(self, item: OpenItem) -> list[Event]:
        """The done events of a reasoning item's part (none for a wordless summary part)."""
        text, where = item.part_text, self._where(item)
        if item.kind == "summary" and not text:
            return []
        part = {"type": PART_TYPES[item.kind], "text": text}
        name = DELTA_EVENTS[item.kind].removesuffix(".delta")
        closed = f"{PART_EVENTS.get(item.kind, 'response.content_part')}.done"
        done = self._event(f"{name}.done", **where, text=text)
        return [done, self._event(closed, **where, part=part)]

    def _hosted_event(self, event: dict[str, Any]) -> list[Event]:
        """A hosted tool's item's event, said as it came (an item opening closes the text)."""
        opening = event.get("type") == "response.output_item.added"
        events = self._close_text() if opening else []
        placed = self._hosted.place(event)
        return events if placed is None else [*events, self._event(placed[0], **placed[1])]

    def _annotation(self, annotation: dict[str, Any]) -> list[Event]:
        """An annotation of the open message's text (a web search's `url_citation`)."""
        item = self._text
        if item is None or item.kind != "message":
            return []
        # Its offsets are the content's (the messages joined): the message's own, as OpenAI's.
        annotation = moved_annotation(annotation, len(item.text) - self._said)
        item.annotations.append(annotation)
        n = len(item.annotations) - 1
        name = "response.output_text.annotation.added"
        return [self._event(name, **self._where(item), annotation_index=n, annotation=annotation)]

    def _signed_thinking(self, blocks: list[dict[str, Any]]) -> list[Event]:
        """Claude's signed thinking blocks (after their text): kept on the reasoning item, its
        ``encrypted_content`` when it closes (one opened for blocks without text: redacted)."""
        if not blocks:
            return []
        events: list[Event] = []
        if self._text is None or self._text.kind != "reasoning":
            events += self._close_text()
            events += self._open_text("reasoning")
        assert self._text is not None
        self._text.signed += blocks
        return events

    def _close_text(self, upstream: dict[str, Any] | None = None) -> list[Event]:
        """`upstream`: a reasoning item's final form, as its upstream gave it."""
        item, self._text = self._text, None
        if item is None:
            return []
        text, where = item.text, self._where(item)
        if item.kind in PART_TYPES:  # its last part's (no summary: no part, as at OpenAI)
            signed = carrying(reasoning_item(item.item_id, "completed", text), item.signed)
            final, events = upstream or signed, self._part_done(item)
        else:  # a message's text or refusal
            refused = item.kind == "refusal"
            part = (
                {"type": "refusal", "refusal": text}
                if refused
                else {**text_part(text, item.logprobs), "annotations": item.annotations}
            )
            said = {"refusal": text} if refused else {"text": text, "logprobs": item.logprobs}
            done = self._event(
                f"{DELTA_EVENTS[item.kind].removesuffix('.delta')}.done", **where, **said
            )
            final = message_item(item.item_id, item_status(self._finish), [part])
            events = [done, self._event("response.content_part.done", **where, part=part)]
        self._output[item.index] = final
        last = self._event("response.output_item.done", output_index=item.index, item=final)
        return [*events, last]

    def _call_delta(self, call: dict[str, Any]) -> list[Event]:
        custom = custom_of(call)
        named = custom if custom is not None else call.get("function") or {}
        open_call = self._calls.get(call.get("index", 0))
        if open_call is None:  # placed (its output_index, its id) when announced
            open_call = OpenItem(-1, "", "function_call" if custom is None else "custom_tool_call")
            self._calls[call.get("index", 0)] = open_call
        held = open_call.index < 0  # its id (fixed once announced) and name may come later
        open_call.call_id = open_call.call_id or (call.get("id") if held else "") or ""
        open_call.name = open_call.name or named.get("name") or ""
        piece = named.get("arguments" if custom is None else "input")
        open_call.pieces += [piece] if piece else []
        if open_call.index < 0:  # announced with its name, as OpenAI's item is added
            return self._announce(open_call) if open_call.name else []
        return self._call_piece(open_call, piece) if piece else []

    def _announce(self, call: OpenItem) -> list[Event]:
        """A call's item added (its name known, or the answer ended), then its input so far."""
        events = self._close_text()
        placed = self._new(call.kind, "fc" if call.kind == "function_call" else "ctc")
        call.index, call.item_id = placed.index, placed.item_id
        n = self._counts["fc"] + self._counts["ctc"]  # calls announced, this one the last
        call.call_id = call.call_id or self._ids.item("call", n)
        self._output.append(item := open_call_item(call, "", "in_progress"))
        events.append(self._event("response.output_item.added", output_index=call.index, item=item))
        return events + (self._call_piece(call, call.text) if call.pieces else [])

    def _call_piece(self, call: OpenItem, piece: str) -> list[Event]:
        at = {"item_id": call.item_id, "output_index": call.index, "delta": piece}
        return [self._event(f"{CALL_EVENTS[call.kind]}.delta", **at)]

    def _close_call(self, call: OpenItem) -> list[Event]:
        events = self._announce(call) if call.index < 0 else []  # no name came: as it is
        where = {"item_id": call.item_id, "output_index": call.index}
        final = open_call_item(call, call.text, item_status(self._finish))
        self._output[call.index] = final
        field = "arguments" if call.kind == "function_call" else "input"
        return [
            *events,
            self._event(f"{CALL_EVENTS[call.kind]}.done", **where, **{field: call.text}),
            self._event("response.output_item.done", output_index=call.index, item=final),
        ]

    def _new(self, kind: str, prefix: str) -> OpenItem:
        self._counts[prefix] += 1
        return OpenItem(len(self._output), self._ids.item(prefix, self._counts[prefix]), kind)

    @staticmethod
    def _where(item: OpenItem) -> dict[str, Any]:
        index = "summary_index" if item.kind == "summary" else "content_index"
        return {"item_id": item.item_id, "output_index": item.index, index: item.part}

    def _snapshot(self, status: str) -> dict[str, Any]:
        response = envelope(self._request, self._ids, self._created_at, self._model, status)
        response["output"] = [dict(item) for item in self._output]
        return response

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event
