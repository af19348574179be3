"""An Anthropic Messages API request body → the OpenAI chat body the edge parses for
`/v1/chat/completions` (then `chat_params_from_openai`: one request proto for both entrances).

The inverse of the router's Anthropic provider (`router_service/providers/_anthropic_map.py`),
in the same OpenAI dialect: signed thinking blocks ride as an assistant message's
`thinking_blocks`, cache breakpoints as a part's or a tool's `cache_control`, where that
provider takes them back. What OpenAI's chat API cannot say is refused (400), naming its path.

Followed:
- Messages API request: https://docs.claude.com/en/api/messages
- Tool use (tools with input_schema, tool_choice auto/any/tool/none, disable_parallel_tool_use,
  tool_use / tool_result blocks): https://docs.claude.com/en/docs/build-with-claude/tool-use
- Images and documents (base64, url and text sources):
  https://docs.claude.com/en/docs/build-with-claude/vision and .../pdf-support
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from clients.codec._json import (
    at,
    at_index,
    dump_json,
    expect_bool,
    expect_int,
    expect_list,
    expect_object,
    expect_str,
    invalid_value,
    missing,
)
from clients.codec._request import chat_params_from_openai
from clients.codec.anthropic._options import check_thinking, with_response_format
from clients.codec.anthropic._parts import block_kind, cached, content_blocks, part, text_part
from clients.codec.anthropic._server_tools import (
    BETA_KEY,
    CONTENT_KEY,
    SERVER_BLOCKS,
    has_server_blocks,
    server_tool_family,
    wanted_betas,
)
from clients.codec.anthropic._tables import TOOL_ERROR_KEY
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

__all__ = ["messages_request_from_anthropic"]

JsonObject = dict[str, Any]

# Keys taken as they are (OpenAI's names are Anthropic's).
_SAME = ("temperature", "top_p")
# Anthropic's own options that OpenAI's chat API has no word for: passed to the upstream as the
# caller's provider-specific keys (an Anthropic-kind deployment honours them; Claude Code sends
# some of them with every request, so refusing them would refuse Claude Code).
_PASSED = ("top_k", "thinking", "cache_control", "context_management", "output_config")
_KNOWN = frozenset(
    {"model", "max_tokens", "system", "messages", "tools", "tool_choice", "stop_sequences"}
    | {"metadata", "stream", *_SAME, *_PASSED}
)
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def messages_request_from_anthropic(
    body: dict[str, Any], betas: Sequence[str] = ()
) -> tuple[chat_pb2.ChatParams, bool]:
    """The chat params and the `stream` flag of a Messages API body (`betas`: its
    `anthropic-beta` headers); raises :class:`InvalidRequestError` naming the path of what is
    wrong or not expressible."""
    return chat_params_from_openai(openai_body(body, betas))


def openai_body(body: dict[str, Any], betas: Sequence[str] = ()) -> JsonObject:
    """The OpenAI chat body that says what the Messages API `body` says; with server tools, the
    beta flags they need (`betas`: the caller's `anthropic-beta` headers) go along."""
    # A null is an option not used (a caller's None), even one this gateway does not take.
    body = {key: value for key, value in body.items() if value is not None}
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise InvalidRequestError(
            f"{unknown[0]}: not supported by this gateway's Messages API "
            f"(supported: {', '.join(sorted(_KNOWN))})",
            unknown[0],
        )
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            missing(key)
    out: JsonObject = {
        "model": expect_str(body["model"], "model"),
        "messages": _system(body.get("system"), "system") + _messages(body["messages"]),
    }
    max_tokens = expect_int(body["max_tokens"], "max_tokens")
    if max_tokens < 1:
        raise InvalidRequestError("max_tokens: must be at least 1", "max_tokens")
    out["max_tokens"] = max_tokens
    out.update({key: body[key] for key in (*_SAME, *_PASSED) if key in body})
    with_response_format(out)  # output_config.format
    if "thinking" in body:
        check_thinking(body["thinking"])
        if body["thinking"]["type"] == "disabled":
            # No thinking block in the answer, as Claude gives none: a deployment that reasons
            # however it is asked has it taken out router side (`include_reasoning: false`, the
            # router's one way to hide it, as the Gemini and Ollama entrances hide theirs).
            out["include_reasoning"] = False
    if "top_k" in body and expect_int(body["top_k"], "top_k") < 0:
        raise InvalidRequestError("top_k: must be at least 0", "top_k")
    if "stop_sequences" in body:
        stops = expect_list(body["stop_sequences"], "stop_sequences")
        if stops:
            path = "stop_sequences"
            out["stop"] = [expect_str(s, at_index(path, i)) for i, s in enumerate(stops)]
    user = _user_id(body.get("metadata"))
    if user is not None:
        out["user"] = user
    if body.get("tools"):
        tools = expect_list(body["tools"], "tools")
        out["tools"] = [_tool(t, at_index("tools", i)) for i, t in enumerate(tools)]
        flags = wanted_betas(betas, (str(tool.get("type", "")) for tool in out["tools"]))
        if flags:
            out[BETA_KEY] = flags
    if body.get("tool_choice") is not None:
        choice = _tool_choice(body["tool_choice"])  # without tools, OpenAI's API refuses it
        if out.get("tools"):
            out.update(choice)
        elif choice["tool_choice"] not in ("none", "auto"):  # any, tool: the router refuses it
            out["tool_choice"] = choice["tool_choice"]
    if body.get("stream") is not None and expect_bool(body["stream"], "stream"):
        # The usage comes in the stream's last chunk, for message_delta.
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    return out


def _user_id(metadata: Any) -> str | None:
    if metadata is None:
        return None
    user = expect_object(metadata, "metadata").get("user_id")
    return None if user is None else expect_str(user, "metadata.user_id")


def _system(system: Any, path: str) -> list[JsonObject]:
    """A system prompt (top-level `system`, or a `system` turn) as an OpenAI system message."""
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    blocks = expect_list(system, path)
    parts = [text_part(b, at_index(path, i)) for i, b in enumerate(blocks)]
    if any("cache_control" in part for part in parts):
        return [{"role": "system", "content": parts}]
    # Text alone: the one form every OpenAI-compatible server takes.
    return [{"role": "system", "content": "".join(part["text"] for part in parts)}]


def _messages(value: Any) -> list[JsonObject]:
    messages = expect_list(value, "messages")
    if not messages:
        raise InvalidRequestError("messages: at least one message is required", "messages")
    out: list[JsonObject] = []
    called: tuple[str, ...] = ()  # the ids of the previous message's tool_use blocks
    for i, message in enumerate(messages):
        path = at_index("messages", i)
        message = expect_object(message, path)
        if "role" not in message:
            missing(at(path, "role"))
        role = expect_str(message["role"], at(path, "role"))
        if "content" not in message:
            missing(at(path, "content"))
        turn: list[JsonObject] = []
        if role == "user":
            turn = _user_turn(message["content"], at(path, "content"), frozenset(called))
        elif role == "assistant":
            turn = [_assistant_turn(message["content"], at(path, "content"))]
        elif role == "system":
            raise InvalidRequestError(_SYSTEM_TURN, at(path, "role"))
        else:
            invalid_value(at(path, "role"), role, ("user", "assistant"))
        answered = {m["tool_call_id"] for m in turn if m["role"] == "tool"}
        if any(call_id not in answered for call_id in called):
            _unanswered([call_id for call_id in called if call_id not in answered], path)
        out += turn
        called = tuple(call["id"] for call in turn[0].get("tool_calls", ()))
    return out


# Anthropic's refusal of a `system` turn in `messages`, in its words.
_SYSTEM_TURN = (
    'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
    'parameter, not "system" as an input message role.'
)


def _unanswered(call_ids: list[str], path: str) -> NoReturn:
    """Anthropic's refusal of a message that does not answer each tool_use of the one before
    it with a tool_result, in its words, naming the message (`messages.2`) and the calls."""
    where = path.replace("[", ".").replace("]", "")
    raise InvalidRequestError(
        f"{where}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(call_ids)}. Each `tool_use` block must have a corresponding `tool_result` "
        "block in the next message.",
        path,
    )


def _user_turn(content: Any, path: str, called: frozenset[str]) -> list[JsonObject]:
    """A user turn: its tool results become OpenAI `tool` messages (first, as Anthropic wants
    them first in the turn), the rest one user message. Each result must answer a tool_use of
    the previous message (`called`: their ids), as Anthropic refuses one that does not."""
    results: list[JsonObject] = []
    parts: list[JsonObject] = []
    blocks = content_blocks(content, path)
    if not blocks:
        raise InvalidRequestError(f"{path}: a user turn must have content", path)
    for i, block in enumerate(blocks):
        where = at_index(path, i)
        if block_kind(block, where) == "tool_result":
            results.append(_tool_result(block, where))
            if results[-1]["tool_call_id"] not in called:
                _unexpected_result(results[-1]["tool_call_id"], where)
        else:
            parts.append(part(block, where))
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _unexpected_result(call_id: str, path: str) -> NoReturn:
    """Anthropic's refusal of a tool_result answering no tool_use of the previous message, in
    its words and with its path (`messages.2.content.1`)."""
    where = path.replace("[", ".").replace("]", "")
    raise InvalidRequestError(
        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {call_id}. Each "
        "`tool_result` block must have a corresponding `tool_use` block in the previous message.",
        path,
    )


def _assistant_turn(content: Any, path: str) -> JsonObject:
    """An assistant turn: text, tool calls, and the signed thinking it came with (kept for an
    Anthropic upstream, which checks the signatures; unsigned thinking is dropped). A turn with
    server tool blocks or cited text is also kept whole, as given (`CONTENT_KEY`): what a
    Claude deployment gets back; another reads its text."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    blocks = content_blocks(content, path)
    texts: list[JsonObject] = []
    calls: list[JsonObject] = []
    thinking: list[JsonObject] = []
    for i, block in enumerate(blocks):
        where = at_index(path, i)
        kind = block_kind(block, where)
        if kind == "text":
            texts.append(text_part(block, where))
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif (kind == "thinking" and block.get("signature")) or kind == "redacted_thinking":
            thinking.append(block)
        elif kind != "thinking" and kind not in SERVER_BLOCKS:
            invalid_value(at(where, "type"), kind, ("text", "tool_use", "thinking", *SERVER_BLOCKS))
    message: JsonObject = {"role": "assistant"}
    if has_server_blocks(blocks):
        # Unsigned thinking (another provider's reasoning) is dropped, as above.
        message[CONTENT_KEY] = [b for b in blocks if b["type"] != "thinking" or b.get("signature")]
    if any("cache_control" in part for part in texts):
        message["content"] = texts
    elif texts or not calls:
        message["content"] = "".join(part["text"] for part in texts)
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _tool_result(block: JsonObject, path: str) -> JsonObject:
    """A tool_result block as an OpenAI `tool` message. `is_error` has no OpenAI word: a failed
    result's message carries it as it is (`TOOL_ERROR_KEY`), its content as written; each
    provider says it in its own words (Claude's flag, Converse's `status`, Gemini's `error`
    key, an `Error: …` text where there is none)."""
    if "tool_use_id" not in block:
        missing(at(path, "tool_use_id"))
    call_id = expect_str(block["tool_use_id"], at(path, "tool_use_id"))
    content = block.get("content", "")
    where = at(path, "content")
    if not isinstance(content, str):
        content = [
            part(b, at_index(where, i)) for i, b in enumerate(content_blocks(content, where))
        ]
    message: JsonObject = {"role": "tool", "tool_call_id": call_id, "content": content}
    failed = block.get(TOOL_ERROR_KEY)
    if failed is not None and expect_bool(failed, at(path, TOOL_ERROR_KEY)):
        message[TOOL_ERROR_KEY] = True
    # Its cache breakpoint (where Claude Code puts its last one in a tool loop) on the tool
    # message, which the Anthropic provider gives the tool_result block: an empty result has no
    # part that could carry it.
    return cached(message, block)


def _tool_call(block: JsonObject, path: str) -> JsonObject:
    for key in ("id", "name"):
        if key not in block:
            missing(at(path, key))
    where = at(path, "input")
    arguments = dump_json(expect_object(block.get("input", {}), where), where)
    call = {
        "id": expect_str(block["id"], at(path, "id")),
        "type": "function",
        "function": {"name": expect_str(block["name"], at(path, "name")), "arguments": arguments},
    }
    return cached(call, block)  # a breakpoint on the call: the Anthropic provider's to take


def _tool(value: Any, path: str) -> JsonObject:
    """A client tool as an OpenAI function. Anthropic's web search and web fetch server tools
    run at Anthropic: they go as given, for a Claude deployment (the router sends the request
    to one that runs them); other server tools (code execution, `bash_…`, computer use…) are
    refused."""
    tool = expect_object(value, path)
    kind = tool.get("type", "custom")
    if isinstance(kind, str) and server_tool_family(kind) is not None:
        return dict(tool)
    if kind != "custom":
        raise InvalidRequestError(
            f"{at(path, 'type')}: server tools ({kind!r}) are not supported by this gateway, "
            "but for web search (web_search_…) and web fetch (web_fetch_…); declare the tool "
            "with a name and an input_schema",
            at(path, "type"),
        )
    if "name" not in tool:
        missing(at(path, "name"))
    function: JsonObject = {"name": expect_str(tool["name"], at(path, "name"))}
    if tool.get("description") is not None:
        function["description"] = expect_str(tool["description"], at(path, "description"))
    if "input_schema" not in tool:
        missing(at(path, "input_schema"))
    function["parameters"] = expect_object(tool["input_schema"], at(path, "input_schema"))
    return cached({"type": "function", "function": function}, tool)


def _tool_choice(value: Any) -> JsonObject:
    choice = expect_object(value, "tool_choice")
    kind = expect_str(choice.get("type"), "tool_choice.type")
    out: JsonObject = {}
    if kind == "tool":
        name = expect_str(choice.get("name"), "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        invalid_value("tool_choice.type", kind, ("auto", "any", "tool", "none"))
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None and expect_bool(parallel, "tool_choice.disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out
