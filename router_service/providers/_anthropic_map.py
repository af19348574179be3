"""Anthropic Messages API ⇄ OpenAI chat dialect: requests, responses and stream events.

Followed:
- Messages API (request, response, stop reasons, usage): https://docs.anthropic.com/en/api/messages
- Streaming events (message_start, content_block_start/delta/stop, message_delta, message_stop,
  ping, error; text_delta, input_json_delta, thinking_delta):
  https://docs.anthropic.com/en/docs/build-with-claude/streaming
- Tool use (tools with input_schema, tool_choice auto/any/tool/none, tool_use / tool_result
  blocks): https://docs.anthropic.com/en/docs/build-with-claude/tool-use/overview
- Content blocks (images, documents): see `_anthropic_blocks`.
- Error types and their HTTP statuses: https://docs.claude.com/en/api/errors
- Prompt caching (`cache_control` on system, message content and tool blocks; OpenAI has no
  such field, callers put it where LiteLLM and OpenRouter take it: on a content part or a tool):
  https://docs.claude.com/en/docs/build-with-claude/prompt-caching
- Extended thinking (thinking blocks with their `signature`, redacted_thinking, signature_delta;
  the last assistant turn's thinking blocks must come back unchanged when tools are used):
  https://docs.claude.com/en/docs/build-with-claude/extended-thinking. OpenAI has no field for
  them: callers get and give them as the message's `thinking_blocks` (LiteLLM's name for it).
- Structured outputs (a `json_schema` response_format is `output_config.format`):
  https://platform.claude.com/docs/en/build-with-claude/structured-outputs
- Server tools (web search, web fetch: `clients.codec.anthropic._server_tools`): the tools go
  as declared; an answer holding their blocks (or cited text) keeps Claude's content blocks
  whole on the message (`CONTENT_KEY`), an assistant turn that holds them goes back as given,
  and `usage.server_tool_use` and a stop reason no finish reason says (`pause_turn`) go along.
  Streams: `_anthropic_stream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec.anthropic import (
    BLOCK_KEY,
    CONTENT_KEY,
    FINISH_BY_STOP_REASON,
    STATUS_BY_ERROR_TYPE,
    STOP_KEY,
    has_server_blocks,
    output_format,
    server_tool_family,
)
from router_service.providers import _json_tool as J
from router_service.providers import _mapping as M
from router_service.providers._anthropic_blocks import cached, content_blocks
from router_service.providers._legacy_functions import no_forced_legacy_call
from router_service.providers._one_choice import one_choice_only
from router_service.providers._reasoning_claude import for_claude, takes_output_format

JsonObject = dict[str, Any]

# The API no_json_mode names: structured outputs take a `json_schema` alone, its objects
# closed (the structured outputs page above), so JSON mode has no word at Claude.
MESSAGES_API = "Claude's Messages API"
# The stop reasons a finish reason says again at the Messages API entrance (`stop_sequence`
# with the choice's `stop_reason`); the others go along as they are.
_SAID_BY_FINISH = frozenset({"end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal"})

__all__ = [
    "MESSAGES_API",
    "STATUS_BY_ERROR_TYPE",
    "completion",
    "finish_reason",
    "request_body",
    "say_stopped",
    "usage",
]


# --- request ------------------------------------------------------------------------------------


def request_body(
    body: Mapping[str, Any],
    model: str,
    default_max_tokens: int,
    *,
    stream: bool,
    named: str | None = None,
) -> JsonObject:
    """The Messages API body for an OpenAI-dialect chat body; `named`: the model `model` is
    (the deployment's base model), for what its name tells (how it thinks)."""
    asked = body
    no_forced_legacy_call(body)
    one_choice_only(body, MESSAGES_API)
    body = J.as_forced_tool(body, named or model, MESSAGES_API)
    system, messages = _messages(body.get("messages") or [])
    out: JsonObject = {
        **M.passthrough(body),
        "model": model,
        "messages": messages,
        "max_tokens": M.max_tokens(body) or default_max_tokens,
    }
    if system:
        out["system"] = system
    out.update(_sampling(body))
    stops = M.stop_list(body)
    if stops:
        out["stop_sequences"] = stops
    user = body.get("user") or body.get("safety_identifier")  # OpenAI's newer word for it
    if isinstance(user, str):
        out["metadata"] = {"user_id": user}
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and tools:
        out["tool_choice"] = choice
    _structured(out, body.get("response_format"), named or model)
    for_claude(out, body, named or model, default_max_tokens)
    if body is not asked:
        J.refuse_thinking(out.get("thinking"), MESSAGES_API)
    if stream:
        out["stream"] = True
    return out


def _structured(out: JsonObject, response_format: Any, model: str) -> None:
    """A `json_schema` response_format as Claude's structured outputs (`output_config.format`),
    beside what the caller's own `output_config` says; none to a Claude older than 4.5, which
    refuses it with a 400 (it answers unconstrained). JSON mode (`json_object`) is
    `no_json_mode`'s at every Claude, unless the caller wrote its own `output_config.format`."""
    own = out.get("output_config")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        if not isinstance(own, dict) or "format" not in own:
            raise M.no_json_mode(MESSAGES_API)
        return
    structured = output_format(response_format)
    if structured is not None and takes_output_format(model):
        out["output_config"] = {**(own if isinstance(own, dict) else {}), "format": structured}


def _sampling(body: Mapping[str, Any]) -> JsonObject:
    """OpenAI's temperature runs to 2, Anthropic's to 1; and Claude 4.5 and later refuse a
    request that sets both temperature and top_p, so temperature (the one OpenAI callers set)
    wins."""
    out: JsonObject = {}
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    elif isinstance(body.get("top_p"), int | float):  # null (the SDK's None) is unset
        out["top_p"] = body["top_p"]
    return out


def _tools(body: Mapping[str, Any]) -> list[JsonObject]:
    """The tools (of function tools, those an `allowed_tools` choice allows)."""
    tools = []
    allowed = M.allowed_tools(body.get("tool_choice"))
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            if allowed is None or tool["function"].get("name") in allowed[1]:
                tools.append(cached(_tool(tool["function"]), tool))
        elif isinstance(tool, dict) and server_tool_family(str(tool.get("type"))):
            tools.append(dict(tool))  # web search, web fetch: Anthropic's own, as given
    return tools


def _tool(function: Mapping[str, Any]) -> JsonObject:
    tool: JsonObject = {
        "name": function.get("name", ""),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        tool["description"] = function["description"]
    return tool


def _tool_choice(choice: Any, parallel: Any) -> JsonObject | None:
    out: JsonObject | None
    allowed = M.allowed_tools(choice)
    if choice == "required" or (allowed is not None and allowed[0] == "required"):
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name", "")}
    else:
        out = {"type": "auto"} if parallel is False else None
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _messages(messages: list[Any]) -> tuple[str | list[JsonObject], list[JsonObject]]:
    """(system prompt, messages): system and developer turns become the top-level prompt (a
    string, or text blocks when a part carries a cache breakpoint), tool results become
    `tool_result` blocks of a user turn, and turns of one role are merged."""
    system: list[str] = []
    system_blocks: list[JsonObject] = []
    out: list[JsonObject] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(M.text_of(content))
            system_blocks += _system_blocks(content)
        elif role == "tool":
            result: JsonObject = {
                "type": "tool_result",
                "tool_use_id": M.tool_id(str(message.get("tool_call_id", ""))),
                "content": _result_content(content, f"messages[{i}]"),
            }
            if M.failed_result(message):
                result["is_error"] = True
            cached(result, message)  # the breakpoint a Messages API caller put on the result
            M.append_turn(out, "user", "content", [result])
        elif role == "assistant" and isinstance(message.get(CONTENT_KEY), list):
            # Claude's own blocks, server tool blocks among them: back as they came.
            given = [dict(block) for block in message[CONTENT_KEY] if isinstance(block, dict)]
            M.append_turn(out, "assistant", "content", given)
        elif role == "assistant":
            blocks = _thinking_blocks(message.get("thinking_blocks"))
            blocks += content_blocks(content, f"messages[{i}]")
            blocks += _tool_uses(message.get("tool_calls") or [], f"messages[{i}].tool_calls")
            M.append_turn(out, "assistant", "content", blocks)
        else:
            blocks = content_blocks(content, f"messages[{i}]")
            if not blocks:  # whitespace alone (M.blank_text), or nothing
                blank = M.blank_text(content, out, messages[i + 1 :])
                blocks = [{"type": "text", **block} for block in blank]
            M.append_turn(out, "user", "content", blocks)
    if any("cache_control" in block for block in system_blocks):
        return system_blocks, out
    return "\n\n".join(s for s in system if s.strip()), out


def _system_blocks(content: Any) -> list[JsonObject]:
    if not isinstance(content, list):
        text = M.text_of(content)
        return [{"type": "text", "text": text}] if text.strip() else []
    return [
        cached({"type": "text", "text": part["text"]}, part)
        for part in M.parts_of(content)
        if part.get("type") == "text" and M.has_text(part)
    ]


def _result_content(content: Any, path: str) -> str | list[JsonObject]:
    """A tool's result: its text, or its blocks when it has more than text (a screenshot tool's
    image: a tool_result takes text and image blocks)."""
    parts = M.parts_of(content)
    if any(
        part.get("type") != "text" or "cache_control" in part or BLOCK_KEY in part for part in parts
    ):
        return content_blocks(content, path)
    return M.text_of(content)


def _thinking_blocks(given: Any) -> list[JsonObject]:
    """The signed thinking an assistant turn came with, as it was (Anthropic checks the
    signatures, and wants them first in the turn)."""
    blocks = []
    for block in given if isinstance(given, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and block.get("signature"):
            blocks.append(
                {"type": "thinking", "thinking": str(block.get("thinking") or "")}
                | {"signature": str(block["signature"])}
            )
        elif block.get("type") == "redacted_thinking" and block.get("data"):
            blocks.append({"type": "redacted_thinking", "data": str(block["data"])})
    return blocks


def _tool_uses(calls: list[Any], path: str) -> list[JsonObject]:
    blocks = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        arguments = str(function.get("arguments") or "")
        block = {
            "type": "tool_use",
            "id": M.tool_id(str(call.get("id", ""))),
            "name": str(function.get("name", "")),
            "input": M.load_arguments(arguments, f"{path}[{i}].function.arguments"),
        }
        blocks.append(cached(block, call))
    return blocks


# --- response -----------------------------------------------------------------------------------


def usage(raw: Mapping[str, Any]) -> JsonObject:
    """OpenAI counts the cache's prompt tokens (read and written) inside prompt_tokens;
    Anthropic reports them apart, the writes split by how long they are kept
    (`cache_creation`: 5 minutes or 1 hour, priced apart)."""
    cached = int(raw.get("cache_read_input_tokens") or 0)
    by_ttl = raw.get("cache_creation")
    by_ttl = by_ttl if isinstance(by_ttl, Mapping) else {}
    hour = int(by_ttl.get("ephemeral_1h_input_tokens") or 0)
    split = int(by_ttl.get("ephemeral_5m_input_tokens") or 0) + hour
    created = max(int(raw.get("cache_creation_input_tokens") or 0), split)
    prompt = int(raw.get("input_tokens") or 0) + cached + created
    out = M.usage(
        prompt,
        int(raw.get("output_tokens") or 0),
        cached=cached,
        cache_write=created,
        cache_write_1h=hour,
    )
    if isinstance(raw.get("server_tool_use"), Mapping):  # web searches and fetches, as counted
        out["server_tool_use"] = dict(raw["server_tool_use"])
    return out


def finish_reason(stop_reason: Any) -> str | None:
    return FINISH_BY_STOP_REASON.get(str(stop_reason), "stop") if stop_reason else None


def completion(data: Mapping[str, Any], model: str, created: int) -> JsonObject:
    """An OpenAI `chat.completion` for a Messages API response."""
    text: list[str] = []
    thinking: list[str] = []
    signed: list[JsonObject] = []
    calls: list[JsonObject] = []
    for block in data.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(str(block.get("thinking", "")))
            signed.append(dict(block))
        elif kind == "tool_use":
            arguments = M.dump_arguments(block.get("input"))
            calls.append(
                M.tool_call(str(block.get("id", "")), str(block.get("name", "")), arguments)
            )
    message = M.assistant_message("".join(text), calls)
    if has_server_blocks(data.get("content") or ()):
        message[CONTENT_KEY] = list(data["content"])
    if signed:
        message["reasoning_content"] = "".join(thinking)
        message["thinking_blocks"] = signed
    raw_usage = data.get("usage")
    out = M.completion(
        str(data.get("id", "")),
        created,
        str(data.get("model") or model),
        message,
        finish_reason(data.get("stop_reason")) or "stop",
        usage(raw_usage) if isinstance(raw_usage, dict) else None,
    )
    say_stopped(out["choices"][0], data)
    return out


def say_stopped(choice: JsonObject, stopped: Mapping[str, Any]) -> None:
    """Which of the request's stop sequences ended the answer (Anthropic's `stop_sequence`),
    in OpenAI-compatible servers' word for it (the choice's `stop_reason`, as vLLM says it);
    a stop reason no finish reason says (`pause_turn`: a server tool's turn to be continued),
    as it is, for the Messages API's callers (`STOP_KEY`)."""
    sequence = stopped.get("stop_sequence")
    reason = stopped.get("stop_reason")
    if reason == "stop_sequence" and isinstance(sequence, str):
        choice["stop_reason"] = sequence
    elif isinstance(reason, str) and reason not in _SAID_BY_FINISH:
        choice[STOP_KEY] = reason
