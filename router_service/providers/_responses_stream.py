"""A Responses API event stream (`POST /responses` with `stream: true`) as OpenAI
`chat.completion.chunk` objects, for the deployments called on it (_responses_map.py maps the
request, _responses_answer.py a whole Response).

Followed: https://platform.openai.com/docs/api-reference/responses-streaming and the openai SDK's
event types. `response.created` opens the stream (the role chunk); `response.output_text.delta`
is content, `response.refusal.delta` the refusal (structured outputs');
`response.reasoning_summary_text.delta` reasoning (a new summary part starts a new paragraph, and
so does a later reasoning item's first, as the unary answer joins them, unless items are kept;
a kept item's later part is named beside its paragraph: `_summary_part`); a
`function_call` item (`response.output_item.added`) opens a tool call, each its own index in the
order they come, and `response.function_call_arguments.delta` adds to it (a `custom_tool_call`
item likewise, with `response.custom_tool_call_input.delta`); a call no delta spoke of is said
whole from its done event (or its item's), as a model that streams calls so gives it (OpenAI's
gpt-5.3-codex-spark), and never twice (a delta of empty text says nothing: it is no chunk, and
the done event still says the call whole); asked for their encrypted content,
a reasoning item's id when it is added and the whole item when done are `reasoning_items` deltas
(the edge keeps them in its own items); the events of OpenAI's hosted tools' items (a web search
call added, searching, done…) are `hosted_events` deltas, whole, and a text annotation added
(`url_citation`) an `annotations` delta (clients/codec/_responses_hosted.py), its offsets in the
content (the texts of all the messages and parts so far joined, as the unary answer's);
`response.completed` /
`response.incomplete` end it (the finish chunk, then the usage chunk). `response.failed` and
`error` events are failures: `failure_of_event` gives their error object (an `error` event's
fields flat, as documented, or nested under `error`, as the live API sends them), which the
adapter classifies as it does any upstream error. Other events carry nothing a chat chunk has
(`.done` events repeat what the deltas said): `feed` gives no chunk for them, and the adapter
yields UPSTREAM_ALIVE instead, the upstream's sign of life (a model reasoning for minutes sends
only such events: `response.in_progress`, a reasoning item added, `keepalive`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._responses_custom import REASONING_ITEMS
from clients.codec._responses_hosted import HOSTED_EVENTS, chat_annotations, is_hosted_event
from router_service.providers._mapping import JsonObject, chunk, tool_call
from router_service.providers._responses_answer import chat_usage, failure_of, finish_reason
from router_service.providers._responses_custom import custom_answer_call, reasoning_kept
from router_service.providers._responses_logprobs import chat_logprobs, part_logprobs

_ENDS = ("response.completed", "response.incomplete")
# The delta events of a call's input: the chat delta's key and field each adds to.
_CALL_DELTAS = {
    "response.function_call_arguments.delta": ("function", "arguments"),
    "response.custom_tool_call_input.delta": ("custom", "input"),
}
# The done events of a call's input: its delta's, and the field that holds the whole input.
_CALL_DONES = {
    "response.function_call_arguments.done": (
        "response.function_call_arguments.delta",
        "arguments",
    ),
    "response.custom_tool_call_input.done": ("response.custom_tool_call_input.delta", "input"),
}
# A call item's input field, and the delta event that adds to it.
_CALL_ITEMS = {
    "function_call": ("response.function_call_arguments.delta", "arguments"),
    "custom_tool_call": ("response.custom_tool_call_input.delta", "input"),
}


def failure_of_event(event: Mapping[str, Any]) -> JsonObject | None:
    """The error object of an event that fails the stream, else None."""
    kind = event.get("type")
    if kind == "error":
        # The API reference shows the fields flat; the live API nests them under `error`
        # (`{"type": "error", "error": {"type", "code", "message", "param"}}`): both are read.
        nested = event.get("error")
        source = nested if isinstance(nested, dict) else event
        error = {k: source.get(k) for k in ("type", "code", "message", "param", "headers")}
        if error["type"] == "error":  # the event's own type, not an error's
            del error["type"]
        return {k: v for k, v in error.items() if v is not None} or {"message": "error event"}
    if kind == "response.failed":
        response = event.get("response")
        return failure_of(response) if isinstance(response, dict) else {"message": "failed"}
    wrapped = event.get("error")
    if kind is None and isinstance(wrapped, dict):  # llama.cpp's `error:` line (providers/_sse.py)
        return dict(wrapped)
    return None


def with_error_headers(headers: Mapping[str, str], carried: Any) -> Mapping[str, str]:
    """The stream's headers and those an error event carries (a rate limit's
    `x-ratelimit-reset-*`, which say how long the key is to rest): the stream's are from
    before the limit was hit."""
    if not isinstance(carried, dict):
        return headers
    return {**headers, **{str(k): str(v) for k, v in carried.items()}}


class ResponsesStream:
    """Maps one stream's events, in order, to chat chunks (`feed`)."""

    __slots__ = (
        *("_created", "_id", "_keep", "_model", "_part_at", "_reasoned", "_said", "_tools"),
        "_told",
    )

    def __init__(self, model: str, created: int, *, keep_reasoning: bool = False) -> None:
        """`keep_reasoning`: the call asked for reasoning items' encrypted content."""
        self._keep = keep_reasoning
        self._id = ""
        self._model = model
        self._created = created
        self._tools: dict[str, int] = {}  # a function_call item's id → its tool call index
        # The calls whose input came in deltas (or whole, once): a done event repeats it then.
        self._told: set[str] = set()
        self._reasoned = False  # reasoning text came: a later summary part is a new paragraph
        # The content said so far, and where the open text part began in it: an annotation's
        # offsets (its part's own) in the content, its parts and messages joined, as unary.
        self._said = self._part_at = 0

    def _chunk(self, delta: JsonObject | None, finish: str | None = None) -> JsonObject:
        return chunk(self._id, self._created, self._model, delta, finish)

    def feed(self, event: Mapping[str, Any]) -> list[JsonObject]:
        kind = event.get("type")
        if kind == "response.created":
            response = event["response"]
            self._id = str(response.get("id", ""))
            self._model = str(response.get("model") or self._model)
            self._created = int(response.get("created_at") or self._created)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            text = str(event.get("delta", ""))
            self._said += len(text)
            out = self._chunk({"content": text})
            logprobs = chat_logprobs(part_logprobs(event))
            out["choices"][0].update({"logprobs": logprobs} if logprobs else {})
            return [out]
        if kind == "response.content_part.added":
            self._part_at = self._said
            return []
        if kind == "response.refusal.delta":
            return [self._chunk({"refusal": str(event.get("delta", ""))})]
        if kind == "response.reasoning_summary_text.delta":
            self._reasoned = True
            return [self._chunk({"reasoning_content": str(event.get("delta", ""))})]
        if kind == "response.reasoning_summary_part.added":
            return self._summary_part(event)
        if is_hosted_event(event):  # a hosted tool's item: the edge says it as it came
            said = {k: v for k, v in event.items() if k != "sequence_number"}
            return [self._chunk({HOSTED_EVENTS: [said]})]
        if kind == "response.output_text.annotation.added" and event.get("annotation"):
            cited = chat_annotations({"annotations": [event["annotation"]]}, self._part_at)
            return [self._chunk({"annotations": cited})] if cited else []
        if kind == "response.output_item.added":
            return self._item_added(event["item"])
        if kind == "response.output_item.done":
            return self._item_done(event["item"])
        if kind in _CALL_DELTAS:
            item_id = str(event.get("item_id"))
            index = self._tools.get(item_id)
            text = str(event.get("delta", ""))
            if index is None or not text:  # an empty delta says nothing (its done event will)
                return []
            self._told.add(item_id)
            key, field = _CALL_DELTAS[kind]
            return [self._chunk({"tool_calls": [{"index": index, key: {field: text}}]})]
        if kind in _CALL_DONES:
            delta, field = _CALL_DONES[kind]
            return self._call_whole(delta, str(event.get("item_id")), event.get(field))
        if kind in _ENDS:
            return self._end(event["response"])
        return []

    def _summary_part(self, event: Mapping[str, Any]) -> list[JsonObject]:
        """Another part of this item's summary, or the first of a later reasoning item's, is a
        new paragraph (items kept are the edge's own items: no paragraph between them). A kept
        item's later part says its `summary_index` too, beside its id (a `reasoning_items`
        entry without its end), so that the edge streams it as a part of its own."""
        index = event.get("summary_index")
        if not index and not (self._reasoned and not self._keep):
            return []
        delta: JsonObject = {"reasoning_content": "\n\n"}
        if index and self._keep:
            delta[REASONING_ITEMS] = [{"id": event.get("item_id"), "summary_index": index}]
        return [self._chunk(delta)]

    def _item_added(self, item: Mapping[str, Any]) -> list[JsonObject]:
        kind = item.get("type")
        if kind == "reasoning" and self._keep:
            return [self._chunk({REASONING_ITEMS: [{"id": item.get("id")}]})]
        if kind not in ("function_call", "custom_tool_call"):
            return []
        index = len(self._tools)
        self._tools[str(item.get("id"))] = index
        if kind == "custom_tool_call":
            call = custom_answer_call({**item, "input": ""}, index)
        else:
            call = tool_call(str(item["call_id"]), str(item["name"]), "", index)
        return [self._chunk({"tool_calls": [call]})]

    def _call_whole(self, delta: str, item_id: str, whole: Any) -> list[JsonObject]:
        """A call's whole input in a done event (`delta`: the event its pieces come in): said
        as one piece when no delta said it (a model that streams its calls so:
        gpt-5.3-codex-spark), else already said."""
        if item_id in self._told or not isinstance(whole, str) or not whole:
            return []
        return self.feed({"type": delta, "item_id": item_id, "delta": whole})

    def _item_done(self, item: Mapping[str, Any]) -> list[JsonObject]:
        if item.get("type") in _CALL_ITEMS:  # its input, should nothing before have said it
            delta, field = _CALL_ITEMS[str(item.get("type"))]
            return self._call_whole(delta, str(item.get("id")), item.get(field))
        if item.get("type") != "reasoning" or not self._keep:
            return []
        return [self._chunk({REASONING_ITEMS: [reasoning_kept(item)]})]

    def _end(self, response: Mapping[str, Any]) -> list[JsonObject]:
        finish = self._chunk({}, finish_reason(response, bool(self._tools)))
        counts = chat_usage(response.get("usage"))
        if counts is None:
            return [finish]
        return [finish, chunk(self._id, self._created, self._model, None, usage_obj=counts)]
