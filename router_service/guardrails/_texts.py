"""The texts of a request that reach an upstream, each as a slot that can be read and replaced.

Scanned: chat messages of every role (string content, text parts, refusals, tool call and function
call arguments; a tool result is a `tool` message's content), so legacy completion prompts and
Responses API input too (the edge sends both as chat messages), and embeddings' string inputs, and
the texts of moderations, images, speech, transcriptions and translations (`input`, `prompt`,
`instructions`; a moderation's text parts) and of reranks (`query`, `documents`). Of a chat call
also its tool definitions (a function's `name` and `description`, every string value of its
`parameters` schema, a tool's unmodelled keys), its `response_format` JSON schema, its `stop`
strings, `user` and `metadata` values, the names it gives (a message's `name`, its tool calls' and
function call's, `tool_choice`'s), and every string value of the fields passed through verbatim
(`extra_json` of the request, of its messages: reasoning handed back, but not a Responses upstream's
encrypted reasoning, of their tool calls and content parts; an embedding request's too), each JSON
written again only when a rule changed one of its strings. Names and signed blocks are not
rewritable (TextSlot): a redact rule's find there blocks. JSON keys are paths, not texts: never
scanned. A text file's text (`_file_texts`: a `text/*` data URL of UTF-8, e.g. a Messages API
plain-text document) is. Not scanned: images, audio and binary files (no text), token-id inputs,
raw JSON parts of kinds the contract does not model. An answer's reasoning (`reasoning_texts`):
`_answers`, `_stream`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableSequence
from typing import Any

import orjson

from clients import compaction_summary, encode_compaction
from clients.codec._responses_custom import HOSTED_ITEMS, REASONING_ITEMS
from clients.codec._responses_hosted import HOSTED_EVENTS
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.guardrails._file_texts import file_texts
from router_service.guardrails._slot import TextSlot, Where

__all__ = [
    "ANSWER_REASONING_KEYS",
    "REASONING_KEYS",
    "TextSlot",
    "chat_texts",
    "embedding_texts",
    "json_item_texts",
    "json_object",
    "json_strings",
    "media_texts",
    "message_texts",
    "reasoning_slots",
    "reasoning_texts",
    "stored_response_texts",
    "with_replaced",
]

# The keys of a Responses API item (a message's text or content, a function call's arguments,
# its output) whose string values reach an upstream when a later call sends the item.
_JSON_TEXT_KEYS = frozenset(("text", "content", "arguments", "output", "refusal"))
# The unmodelled keys of an answer's message (and a stream's delta) that carry the model's
# reasoning: `reasoning_content` (DeepSeek, vLLM, this router's Anthropic, Bedrock and Gemini
# mappings), `reasoning` and `reasoning_details` (OpenRouter), `thinking_blocks` (signed
# Anthropic blocks, LiteLLM's name).
REASONING_KEYS = ("reasoning_content", "reasoning", "reasoning_details", "thinking_blocks")
# And a Responses upstream's reasoning items (their summary's `text`; never the encrypted
# content), OpenAI's hosted tools' items and a stream's events of them (`_HOSTED_TEXT_KEYS`).
ANSWER_REASONING_KEYS = (*REASONING_KEYS, REASONING_ITEMS, HOSTED_ITEMS, HOSTED_EVENTS)
# What of a hosted item the model wrote or its tool answered: a web search's `query`, a file
# search's `queries` and its results' `text`, an MCP call's `arguments` and `output`, the code a
# code interpreter ran and its `logs`, an image's `revised_prompt`; never ids, URLs, images.
_HOSTED_TEXT_KEYS = frozenset({"query", "queries", "text", "arguments", "output", "code", "logs"})
_HOSTED_TEXT_KEYS |= {"revised_prompt"}
# And a stream's events of them: a piece of an MCP call's arguments or of the code (`delta`).
_HOSTED_EVENT_KEYS = _HOSTED_TEXT_KEYS | {"delta"}
# The text keys of a reasoning block (Anthropic's `thinking`, OpenRouter's `text`, `summary`).
_REASONING_BLOCK_KEYS = frozenset(("thinking", "text", "summary"))
# The fields of a media call (MediaParams.params_json) whose text reaches the upstream (a
# rerank's `query` and `documents`, strings or Jina's `{"text": ...}` objects, too).
_MEDIA_TEXT_KEYS = ("input", "prompt", "instructions", "query", "documents")


def chat_texts(params: chat_pb2.ChatParams) -> Iterator[TextSlot]:
    yield from message_texts(params.messages, "messages")
    for i, message in enumerate(params.messages):
        yield from _message_extra_texts(message, ("messages", i))
    for i, tool in enumerate(params.tools):
        yield from _tool_texts(tool, ("tools", i))
    yield from _option_texts(params)
    if params.HasField("response_format"):
        schema = params.response_format.json_schema
        where: Where = ("response_format", "json_schema")
        if schema.HasField("description"):
            yield TextSlot(schema, "description", (*where, "description"))
        yield from _json_field_texts(schema, "schema_json", (*where, "schema"))
    yield from _extra_texts(params, ())


def _message_extra_texts(message: chat_pb2.ChatMessage, where: Where) -> Iterator[TextSlot]:
    """What of a request message `message_texts` leaves (it walks answers and stored
    conversations too): the names it gives (its `name`, its tool calls' and function call's
    function names: not rewritable), and every string value of the unmodelled keys of the
    message (`reasoning_content`, `reasoning`, `thinking_blocks`…), of its tool calls and of
    its content parts."""
    if message.HasField("name"):
        yield TextSlot(message, "name", (*where, "name"), rewritable=False)
    for k, call in enumerate(message.tool_calls):
        at: Where = (*where, "tool_calls", k)
        if call.function.name:
            yield TextSlot(call.function, "name", (*at, "function", "name"), rewritable=False)
        yield from _extra_texts(call, at)
    if message.function_call.name:
        at = (*where, "function_call", "name")
        yield TextSlot(message.function_call, "name", at, rewritable=False)
    if message.WhichOneof("content") == "parts":
        for j, part in enumerate(message.parts.parts):
            yield from _extra_texts(part, (*where, "content", j))
    yield from _extra_texts(message, where)


def _option_texts(params: chat_pb2.ChatParams) -> Iterator[TextSlot]:
    """The request options the upstream gets as text: `stop` strings, `user` and `metadata`
    values (rewritable: a redacted one is still a valid string), and the function `tool_choice`
    names (not rewritable: it must name one of the tools; so is every string of a `tool_choice`
    shape the contract does not model, e.g. `allowed_tools`: names too)."""
    if params.WhichOneof("stop") == "stop_text":
        yield TextSlot(params, "stop_text", ("stop",))
    elif params.WhichOneof("stop") == "stop_list":
        for j in range(len(params.stop_list.values)):
            yield TextSlot(params.stop_list.values, j, ("stop", j))
    if params.HasField("user"):
        yield TextSlot(params, "user", ("user",))
    for key in sorted(params.metadata):  # a map: its order is no order
        yield TextSlot(params.metadata, key, ("metadata", key), item=True)
    choice = params.tool_choice
    which = choice.WhichOneof("choice")
    if which == "function_name":
        where: Where = ("tool_choice", "function", "name")
        yield TextSlot(choice, "function_name", where, rewritable=False)
    elif which == "raw_json":
        for slot in _json_field_texts(choice, "raw_json", ("tool_choice",)):
            slot.rewritable = False
            yield slot


def _tool_texts(tool: chat_pb2.Tool, where: Where) -> Iterator[TextSlot]:
    """A tool definition's texts: its function's `name` and `description`, every string value of its
    `parameters` JSON schema (descriptions, enum values, defaults, examples), and every string
    value of its unmodelled keys (a function definition the contract does not model whole
    travels there)."""
    function = tool.function
    if function.name:  # not rewritable: calls and `tool_choice` name the tool by it
        yield TextSlot(function, "name", (*where, "function", "name"), rewritable=False)
    if function.HasField("description"):
        yield TextSlot(function, "description", (*where, "function", "description"))
    yield from _json_field_texts(function, "parameters_json", (*where, "function", "parameters"))
    yield from _extra_texts(tool, where)


def _extra_texts(owner: Any, where: Where) -> Iterator[TextSlot]:
    """Every string value of `owner.extra_json` (keys passed through verbatim, merged back at
    the owner's level: a path names them as the caller wrote them)."""
    return _json_field_texts(owner, "extra_json", where)


def _json_field_texts(owner: Any, field: str, where: Where) -> Iterator[TextSlot]:
    """Every string value of the JSON in `owner.<field>`; written again (compact) only when a
    slot changed. Empty or no JSON: nothing (the codec refuses what is no JSON)."""
    text = getattr(owner, field)
    if not text:
        return iter(())
    return _json_texts(text, lambda changed: setattr(owner, field, changed), where, None)


def message_texts(messages: Iterable[chat_pb2.ChatMessage], field: str) -> Iterator[TextSlot]:
    for i, message in enumerate(messages):
        kind = message.WhichOneof("content")
        if kind == "text":
            yield TextSlot(message, "text", (field, i, "content"))
        elif kind == "parts":
            for j, part in enumerate(message.parts.parts):
                if part.WhichOneof("part") == "text":
                    yield TextSlot(part.text, "text", (field, i, "content", j, "text"))
                yield from file_texts(part, (field, i, "content", j))
        if message.HasField("refusal"):
            yield TextSlot(message, "refusal", (field, i, "refusal"))
        for k, call in enumerate(message.tool_calls):
            if call.function.arguments:
                where: Where = (field, i, "tool_calls", k, "function", "arguments")
                yield TextSlot(call.function, "arguments", where)
        if message.function_call.arguments:
            where = (field, i, "function_call", "arguments")
            yield TextSlot(message.function_call, "arguments", where)


def reasoning_texts(message: chat_pb2.ChatMessage, field: str) -> Iterator[TextSlot]:
    """The model's reasoning an answer's message carries in its unmodelled keys
    (`reasoning_slots`). The message's `extra_json` is written again only when a slot changed
    (replace a slot before asking for the next)."""
    extra = json_object(message.extra_json)
    if extra is None:
        return
    slots = reasoning_slots(extra, field)
    yield from slots
    if any(slot.changed for slot in slots):
        message.extra_json = orjson.dumps(extra).decode()


def reasoning_slots(extra: dict[str, Any], field: str) -> list[TextSlot]:
    """The reasoning in a message's unmodelled keys `extra`, as providers name it
    (`ANSWER_REASONING_KEYS`): a string, or the texts of its blocks (`thinking`, `text`, `summary`;
    a signed block's not rewritable)."""
    slots: list[TextSlot] = []
    for key in ANSWER_REASONING_KEYS:
        value = extra.get(key)
        if isinstance(value, str):
            slots.append(TextSlot(extra, key, (field, key), item=True))
        elif value is not None:
            keys = _HOSTED_TEXT_KEYS if key == HOSTED_ITEMS else _REASONING_BLOCK_KEYS
            keys = _HOSTED_EVENT_KEYS if key == HOSTED_EVENTS else keys
            slots.extend(json_strings(value, (field, key), keys))
    return slots


def json_object(text: str) -> dict[str, Any] | None:
    """`text` parsed when it is a JSON object; None when empty or anything else."""
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def embedding_texts(params: embeddings_pb2.EmbeddingParams) -> Iterator[TextSlot]:
    which = params.WhichOneof("input")
    if which == "text":
        yield TextSlot(params, "text", ("input",))
    elif which == "texts":
        for j in range(len(params.texts.values)):
            yield TextSlot(params.texts.values, j, ("input", j))
    yield from _extra_texts(params, ())


def media_texts(params: media_pb2.MediaParams) -> Iterator[TextSlot]:
    """The texts of a media call's JSON fields: a string `input` / `prompt` / `instructions` /
    `query`, a list of strings (a rerank's `documents`), or a moderation's `{"type": "text",
    "text"}` parts (a rerank's `{"text"}` documents). The JSON is written
    again only when a slot changed (replace a slot before asking for the next, as the screen
    does); JSON that is no object is left to the handler's own checks."""
    fields = json_object(params.params_json)
    if fields is None:
        return
    slots: list[TextSlot] = []
    for key in _MEDIA_TEXT_KEYS:
        value = fields.get(key)
        if isinstance(value, str):
            slots.append(TextSlot(fields, key, (key,), item=True))
        elif isinstance(value, list):
            for j, item in enumerate(value):
                if isinstance(item, str):
                    slots.append(TextSlot(value, j, (key, j)))
                elif isinstance(item, dict) and isinstance(item.get("text"), str):
                    slots.append(TextSlot(item, "text", (key, j, "text"), item=True))
    yield from slots
    if any(slot.changed for slot in slots):
        params.params_json = orjson.dumps(fields).decode()


def stored_response_texts(response: pb.StoredResponse) -> Iterator[TextSlot]:
    """What a stored response keeps for the calls that continue it: its conversation as chat
    messages, and its input items (not its output items nor the Response: never sent up)."""
    yield from message_texts(response.messages, "response.messages")
    yield from json_item_texts(response.input_items_json, "response.input_items_json")


def json_item_texts(items: MutableSequence[str], field: str) -> Iterator[TextSlot]:
    """The texts of JSON items (Responses API items), each item written again only when a
    slot of it changed (when the next slot is asked for: replace a slot before that, as the
    screen does); an item that is no JSON is left to the handler's own checks."""
    for i in range(len(items)):

        def write(changed: str, i: int = i) -> None:
            items[i] = changed

        yield from _json_texts(items[i], write, (field, i), _JSON_TEXT_KEYS)


def _json_texts(
    text: str, write: Callable[[str], None], where: Where, keys: frozenset[str] | None
) -> Iterator[TextSlot]:
    """The strings of the JSON `text` (`_json_strings`); `write` gets the JSON again, compact,
    when a slot changed (when the next slot is asked for after the last: replace a slot before
    that, as the screen does). No JSON: nothing, left to the handler's own checks."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    slots = [slot for slot in json_strings(value, where, keys) if not _opaque(slot.where)]
    summary = _compaction_summary_slot(value, where)
    if summary is not None:
        slots.append(summary)
    yield from slots
    if summary is not None and summary.changed:
        value["encrypted_content"] = encode_compaction(summary.text)
    if any(slot.changed for slot in slots):
        write(orjson.dumps(value).decode())


def _opaque(where: Where) -> bool:
    """Whether a JSON string is no text, but bytes or names only an upstream reads: encrypted
    reasoning (`_ciphertext`), or what of a hosted tool's item is not its text (ids, a
    screenshot's image, a status: `_HOSTED_TEXT_KEYS`)."""
    key = where[-2] if isinstance(where[-1], int) else where[-1]  # a list's: the list's key
    return _ciphertext(where) or (HOSTED_ITEMS in where and key not in _HOSTED_TEXT_KEYS)


def _ciphertext(where: Where) -> bool:
    """Whether a JSON string is a Responses upstream's encrypted reasoning handed back (a
    message's `reasoning_items[i].encrypted_content`): opaque bytes only that upstream reads,
    never screened (a find there is chance; rewritten, it would no longer decrypt)."""
    return len(where) > 2 and where[-1] == "encrypted_content" and where[-3] == REASONING_ITEMS


def _compaction_summary_slot(value: Any, where: Where) -> TextSlot | None:
    """A compaction item's summary: text, though encoded in its `encrypted_content`
    (`clients.compaction_summary`), so kept redacted as a message's is (encoded again by
    `_json_texts` when it changed). None for any other value, or content not ours."""
    if not isinstance(value, dict) or value.get("type") != "compaction":
        return None
    content = value.get("encrypted_content")
    summary = compaction_summary(content) if isinstance(content, str) else None
    if summary is None:
        return None
    return TextSlot({"summary": summary}, "summary", (*where, "encrypted_content"), item=True)


def json_strings(value: Any, where: Where, keys: frozenset[str] | None) -> Iterator[TextSlot]:
    """The string values under `keys` of the objects in `value`, and in arrays under them
    (None: every string value): an object's or array's own strings, then those nested in it.
    A signed object's (one with a `signature`, e.g. Anthropic's thinking blocks handed back)
    are not rewritable: the provider refuses the object when its text no longer matches."""
    if not isinstance(value, dict | list):
        return
    # A stack, not recursion: a caller's JSON may nest deeper than Python's recursion limit.
    stack: list[tuple[Any, Where]] = [(value, where)]
    while stack:
        node, at = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        inner_nodes: list[tuple[Any, Where]] = []
        for key, inner in pairs:
            if isinstance(inner, dict | list):
                inner_nodes.append((inner, (*at, key)))
            elif isinstance(inner, str) and (
                keys is None or (at[-1] if isinstance(node, list) and at else key) in keys
            ):
                signed = isinstance(node, dict) and "signature" in node
                yield TextSlot(node, key, (*at, key), item=True, rewritable=not signed)
        stack.extend(reversed(inner_nodes))


def with_replaced(text: str, replaced: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, marker) of `replaced` (in order) put in its place."""
    pieces: list[str] = []
    position = 0
    for start, end, marker in replaced:
        pieces += (text[position:start], marker)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
