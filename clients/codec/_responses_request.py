"""OpenAI Responses API request body → ``ChatParams``.

The edge serves ``POST /v1/responses`` by translating it onto the router's Chat / ChatStream calls,
so a request becomes the chat-completions body it means and is then parsed by
:func:`chat_params_from_openai` (one validation and one way to the router for both APIs).

A request that continues a stored response (``previous_response_id``) or references a stored
item (``item_reference``) is parsed with the :class:`History` those give it (``_responses_stored``
finds the references and builds it; the edge loads them from the router). What does not
translate is refused with :class:`InvalidRequestError` naming the field: a stored ``prompt``,
built-in tools, ``background`` with ``store: false`` (and ``conversation`` when its items
were not loaded). Unknown top-level keys ride to the upstream
as the chat route's do; Responses-only keys with no chat meaning are dropped (:data:`_DROPPED`).
A background request (:attr:`ResponsesRequest.background`) is parsed as any other: the router
runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.codec._json import (
    at,
    at_index,
    expect_bool,
    expect_int,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail_type,
    invalid_value,
    missing,
)
from clients.codec._request import chat_params_from_openai
from clients.codec._responses_compaction import compaction_message
from clients.codec._responses_custom import (
    ENCRYPTED,
    INCLUDE,
    add_reasoning,
    custom_call,
    drop_bare_reasoning,
    joins_reasoning,
    required_strings,
)
from clients.codec._responses_echo import echo_of
from clients.codec._responses_hosted import HOSTED_ITEM_TYPES, add_hosted
from clients.codec._responses_include import LOGPROBS, include_values
from clients.codec._responses_items import input_items_of, is_item_reference
from clients.codec._responses_thinking import check_thinking
from clients.codec._responses_tools import text_options, tool_options
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2, routing_pb2

# Keys that need a response, conversation or prompt stored: refused by name (a previous
# response only when no History came with the request).
_STORED = {
    "previous_response_id": "'previous_response_id' cannot be used here: the stored response "
    "was not loaded. Send the whole conversation in 'input' (the earlier input items followed "
    "by the previous response's output items).",
    "conversation": "'conversation' cannot be used here: the conversation was not loaded. Send "
    "the whole conversation in 'input'.",
    "prompt": "Stored prompt templates ('prompt') cannot be used: this gateway stores none. "
    "Send the instructions and input themselves.",
}
# Responses-only keys with nothing to do on a chat completion; forwarding them would make an
# OpenAI-compatible upstream refuse the call (`store` would even store it at OpenAI).
# (A stateful key sent as null means "not used": dropped too.) `max_tool_calls` bounds hosted
# tools (sent on beside one: _responses_tools.py); `context_management` compacts a stored context.
_DROPPED = frozenset(
    {"store", "include", "truncation", "stream_options", "background", *_STORED}
    | {"max_tool_calls", "context_management"}
)
# Keys whose value the Response object repeats, as the caller sent them.
_TRANSLATED = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "text", "reasoning", "stream"}
    | {"max_output_tokens", "metadata", "temperature", "top_p", "parallel_tool_calls", "user"}
)
_AUTO, _DISABLED = routing_pb2.TRUNCATION_AUTO, routing_pb2.TRUNCATION_DISABLED
_MESSAGE_ROLES = ("user", "system", "developer", "assistant")
# Chat's key → the Responses field it was set by, for a refusal of the router's shared chat
# checks (`responses_field`). `messages[2]` is no input item's index (the instructions and a
# previous response's turns come first): `input`, whole. Logprobs are asked by `include`
# (`message.output_text.logprobs`; `top_logprobs` alone asks them too, but says how many).
_CALLERS_FIELDS = {
    "logprobs": "include",
    "max_completion_tokens": "max_output_tokens",
    "messages": "input",
    "reasoning_effort": "reasoning.effort",
    "response_format": "text.format",
}


@dataclass(frozen=True)
class History:
    """What the stored responses a request names give it."""

    # The previous response's conversation (`previous_response_id`), without its instructions.
    messages: Sequence[chat_pb2.ChatMessage] = ()
    # Stored output items by id, for the request's `item_reference`s.
    items: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # The conversation the request continues (`conversation`): `messages` are its items.
    conversation: str | None = None
    # The session the previous response's conversation is named by (`StoredResponse.session_id`).
    session_id: str = ""


@dataclass(frozen=True)
class ResponsesRequest:
    """A parsed ``POST /v1/responses`` body."""

    params: chat_pb2.ChatParams
    stream: bool
    # The request's fields the Response object repeats (`tools`, `tool_choice`, `text`…).
    echo: dict[str, Any] = field(default_factory=dict)
    store: bool = False  # whether the caller wants the response stored (`store`, default true)
    # Where the conversation starts in `params.messages`: after the instructions, which a
    # continuation does not carry over.
    conversation_start: int = 0
    # `input` as OpenAI lists it (`_responses_items`), item references resolved; ids not yet.
    input_items: tuple[dict[str, Any], ...] = ()
    # `background: true`: run by the router, answered at once as `queued`, polled by id.
    background: bool = False

    @property
    def routing(self) -> routing_pb2.RoutingOptions:
        """What the request asks of the router's routing: its `truncation`."""
        auto = self.echo.get("truncation") == "auto"  # the router leaves out what does not fit
        return routing_pb2.RoutingOptions(truncation=_AUTO if auto else _DISABLED)


def responses_request_from_openai(
    body: dict[str, Any], history: History | None = None
) -> ResponsesRequest:
    """Parse a Responses API request; raises :class:`InvalidRequestError` naming the field.
    `history`: what its `previous_response_id` and `item_reference`s name, loaded."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    _refuse_stateful(body, history)
    chat: dict[str, Any] = {key: v for key, v in body.items() if key not in _TRANSLATED}
    for key in _DROPPED:
        chat.pop(key, None)
    if body.get("model") is None:
        missing("model")
    chat["model"] = expect_str(body["model"], "model")
    if body.get("input") is None:
        missing("input")
    messages = []
    if body.get("instructions") is not None:
        instructions = expect_str(body["instructions"], "instructions")
        messages.append({"role": "system", "content": instructions})
    start = len(messages)
    items = history.items if history is not None else None
    messages.extend(messages_from_input(body["input"], items))
    chat["messages"] = messages
    _read_options(body, chat)
    stream = body.get("stream") is not None and expect_bool(body["stream"], "stream")
    store = body.get("store") is None or expect_bool(body["store"], "store")
    background = _background(body, store)
    params, _ = chat_params_from_openai(chat)
    if history is not None and history.messages:
        # The earlier conversation goes after this request's instructions, before its input.
        own = list(params.messages)
        del params.messages[:]
        params.messages.extend([*own[:start], *history.messages, *own[start:]])
    if stream:
        # Usage arrives in a last chunk only when asked for; response.completed carries it.
        params.stream_options.include_usage = True
    echo = echo_of(body, store)
    if history is not None and history.conversation is not None:
        echo["conversation"] = {"id": history.conversation}
    listed = input_items_of(body["input"], items)
    return ResponsesRequest(params, stream, echo, store, start, listed, background)


def _refuse_stateful(body: dict[str, Any], history: History | None) -> None:
    for key, message in _STORED.items():
        if key == "previous_response_id" and history is not None:
            continue
        if key == "conversation" and history is not None and history.conversation is not None:
            continue
        if body.get(key) is not None:
            raise InvalidRequestError(message, param=key)


def _background(body: dict[str, Any], store: bool) -> bool:
    """Whether the request runs in the background (`background: true`): it must be stored."""
    if body.get("background") is None or not expect_bool(body["background"], "background"):
        return False
    if not store:  # OpenAI's rule: a background response is polled, so it must be kept
        raise InvalidRequestError(
            "Background responses must be stored: 'background: true' requires 'store: true'.",
            param="store",
        )
    return True


def responses_field(param: str | None) -> str | None:
    """The Responses field that chat's `param` (in a router's refusal) stands for; None when
    the caller wrote it so (`temperature`) or it names no field."""
    key = (param or "").partition("[")[0].partition(".")[0]
    return _CALLERS_FIELDS.get(key)


def _read_options(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """The scalar and object options, each to its chat-completions place."""
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = expect_number(body[key], key)
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = expect_int(body["max_output_tokens"], "max_output_tokens")
    if body.get("user") is not None:
        chat["user"] = expect_str(body["user"], "user")
    included = include_values(body.get("include"))
    if ENCRYPTED in included:  # a Responses upstream's reasoning items, kept in the answer
        chat[INCLUDE] = [ENCRYPTED]
    asked = LOGPROBS in included
    if asked or body.get("top_logprobs") is not None:
        # Chat completions take `top_logprobs` only beside `logprobs: true` (OpenAI's 400).
        chat["logprobs"] = True
    if body.get("metadata") is not None:  # repeated in the Response; not the upstream's business
        for key, value in expect_object(body["metadata"], "metadata").items():
            expect_str(value, at("metadata", key))
    tool_options(body, chat)
    if body.get("text") is not None:
        text_options(expect_object(body["text"], "text"), chat)
    if body.get("reasoning") is not None:
        reasoning = expect_object(body["reasoning"], "reasoning")
        if reasoning.get("effort") is not None:  # `summary` has no chat counterpart
            chat["reasoning_effort"] = expect_str(reasoning["effort"], "reasoning.effort")


# --- input items ---------------------------------------------------------------------------------


def messages_from_input(
    value: Any, items: Mapping[str, dict[str, Any]] | None = None, *, path: str = "input"
) -> list[dict[str, Any]]:
    """``input`` (a string, or a list of items) as chat-completions messages; an
    ``item_reference`` stands for the item of that id in `items` (stored output items).

    A ``function_call`` item joins the assistant message just before it (one assistant turn
    carries all its tool calls, as chat completions want), as does a ``custom_tool_call``; a
    ``function_call_output`` (``custom_tool_call_output``) is a tool message; ``reasoning``
    items (a previous output fed back) ride on the assistant turn after them (_responses_custom);
    a ``compaction`` item is the summary it holds, as a system message in its place.
    """
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        fail_type(path, "a string or an array of input items", value)
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        item_path = at_index(path, i)
        obj = expect_object(item, item_path)
        if is_item_reference(obj):
            obj = _referenced(obj, item_path, items)
        _add_item(messages, obj, item_path)
    return drop_bare_reasoning(messages)


def _add_item(messages: list[dict[str, Any]], obj: dict[str, Any], path: str) -> None:
    kind = expect_str(obj.get("type", "message"), at(path, "type"))  # a set's key below
    if kind == "message":
        message = _message(obj, path)
        if not joins_reasoning(messages, message):
            messages.append(message)
    elif kind in ("function_call", "custom_tool_call"):
        read = _function_call if kind == "function_call" else custom_call
        _append_call(messages, read(obj, path))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        messages.append(_call_output(obj, path))
    elif kind == "compaction":
        messages.append(compaction_message(obj, path))
    elif kind == "reasoning":
        check_thinking(obj, path)
        add_reasoning(messages, obj, path)
    elif kind in HOSTED_ITEM_TYPES:  # for a Responses API deployment, as they are
        add_hosted(messages, obj, path)
    else:
        raise InvalidRequestError(
            f"Input items of type {kind!r} are not supported here: only 'message', "
            "'function_call', 'function_call_output', 'custom_tool_call', "
            "'custom_tool_call_output', 'reasoning', 'item_reference', 'compaction' and "
            "hosted tools' items ('web_search_call', 'local_shell_call_output'…).",
            param=at(path, "type"),
        )


def _referenced(
    obj: dict[str, Any], path: str, items: Mapping[str, dict[str, Any]] | None
) -> dict[str, Any]:
    item_id = expect_str(obj.get("id"), at(path, "id"))
    found = items.get(item_id) if items is not None else None
    if found is None:  # the edge answers 404 before: this is the codec used on its own
        raise InvalidRequestError(
            f"Item with id {item_id!r} was not loaded: send the item itself.", param=path
        )
    return found


def _message(obj: dict[str, Any], path: str) -> dict[str, Any]:
    if obj.get("role") is None:
        missing(at(path, "role"))
    role = expect_str(obj["role"], at(path, "role"))
    if role not in _MESSAGE_ROLES:
        invalid_value(at(path, "role"), role, _MESSAGE_ROLES)
    content = obj.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts_path = at(path, "content")
    parts = expect_list(content, parts_path)
    message: dict[str, Any] = {"role": role}
    chat_parts = []
    for i, part in enumerate(parts):
        part_path = at_index(parts_path, i)
        if _part_type(part, part_path) == "refusal" and role == "assistant":
            message["refusal"] = expect_str(part.get("refusal"), at(part_path, "refusal"))
        else:
            chat_parts.append(content_part(part, part_path))
    if role == "assistant" and all(p["type"] == "text" for p in chat_parts):
        # Every provider takes an assistant turn's text as a string; not all take parts.
        message["content"] = "".join(p["text"] for p in chat_parts)
    else:
        message["content"] = chat_parts
    return message


def _part_type(part: Any, path: str) -> str:
    obj = expect_object(part, path)
    if obj.get("type") is None:
        missing(at(path, "type"))
    return expect_str(obj["type"], at(path, "type"))


def content_part(part: Any, path: str) -> dict[str, Any]:
    """A Responses content part as the chat content part the router already handles."""
    kind = _part_type(part, path)
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": expect_str(part.get("text"), at(path, "text"))}
    if kind == "input_image":
        if part.get("image_url") is not None:
            image: dict[str, Any] = {"url": expect_str(part["image_url"], at(path, "image_url"))}
            if part.get("detail") is not None:
                image["detail"] = expect_str(part["detail"], at(path, "detail"))
            return {"type": "image_url", "image_url": image}
        if part.get("file_id") is not None:  # an uploaded file: the chat path's `file` part
            file_id = expect_str(part["file_id"], at(path, "file_id"))
            return {"type": "file", "file": {"file_id": file_id}}
        missing(at(path, "image_url"))
    if kind == "input_file":
        file: dict[str, Any] = {}
        for key in ("file_data", "file_id", "filename"):
            if part.get(key) is not None:
                file[key] = expect_str(part[key], at(path, key))
        if part.get("file_url") is not None:  # a link travels as a URL `file_id` (see README)
            file["file_id"] = expect_str(part["file_url"], at(path, "file_url"))
        return {"type": "file", "file": file}
    supported = ("input_text", "input_image", "input_file", "output_text", "refusal")
    invalid_value(at(path, "type"), kind, supported)


def _function_call(obj: dict[str, Any], path: str) -> dict[str, Any]:
    call_id, name, arguments = required_strings(obj, path, "call_id", "name", "arguments")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _append_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None  # OpenAI's own shape of a turn that only calls tools
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(obj: dict[str, Any], path: str) -> dict[str, Any]:
    if obj.get("call_id") is None:
        missing(at(path, "call_id"))
    message = {"role": "tool", "tool_call_id": expect_str(obj["call_id"], at(path, "call_id"))}
    output = obj.get("output")
    if isinstance(output, str):
        return {**message, "content": output}
    out_path = at(path, "output")
    parts = expect_list(output, out_path)
    return {
        **message,
        "content": [content_part(p, at_index(out_path, i)) for i, p in enumerate(parts)],
    }
