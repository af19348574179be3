"""Custom (freeform) tools for the upstreams that have none (Anthropic, Gemini, Bedrock, Cohere,
Cloudflare…): emulated as a function tool, so that an agent declaring them (Codex's
`apply_patch`) works whatever model answers it.

A custom tool (`Tool.type` "custom", its `{"custom": {name, description, format}}` in
`extra_json`) is sent as a function tool of the same name taking one string parameter, `input`,
its description telling what that string is (the format's grammar in it); a custom call of the
conversation (`ToolCall.type` "custom", `{"custom": {name, input}}`) is sent as that function's
call with arguments `{"input": …}`, a custom `tool_choice` as the function's. The answer's calls
of those functions become custom calls again, unary (`restore_completion`) and streamed
(`CustomCallDeltas`: each argument delta's part of the `input` string as it is decoded). OpenAI's
chat completions and the Responses API take custom tools themselves (`takes_custom_tools`).
The reasoning items a Responses upstream made ride on the messages for it alone: every other
upstream gets the messages without them (`without_carried_reasoning`).
"""

from __future__ import annotations

from typing import Any

import orjson

from clients.codec._responses_custom import ENCRYPTED, INCLUDE, REASONING_ITEMS
from clients.codec.anthropic import server_tool_family
from clients.switchboard.v1 import chat_pb2
from router_service.errors import UpstreamFailure
from router_service.providers._mapping import unsupported

__all__ = [
    "emulated",
    "inexpressible_tool",
    "input_of",
    "restore_call",
    "restore_completion",
    "without_carried_reasoning",
]

_INPUT = "input"
_SAID = (
    "Call it with one argument, `input`: the tool's input as plain text (not JSON), which the "
    "tool reads as it is."
)


def _loads(text: str) -> dict[str, Any]:
    value = orjson.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _custom(extra_json: str) -> dict[str, Any]:
    custom = _loads(extra_json).get("custom")
    return custom if isinstance(custom, dict) else {}


def emulated(params: chat_pb2.ChatParams) -> tuple[chat_pb2.ChatParams, frozenset[str]]:
    """`params` with their custom tools (and calls, and choice) as function ones, and the names
    of those tools; `params` itself when there are none."""
    calls = [c for m in params.messages for c in m.tool_calls if c.type == "custom"]
    if not calls and not any(t.type == "custom" for t in params.tools):
        return params, frozenset()
    out = chat_pb2.ChatParams()
    out.CopyFrom(params)
    names = set()
    for tool in out.tools:
        if tool.type == "custom":
            names.add(_as_function(tool))
    for message in out.messages:
        for call in message.tool_calls:
            if call.type == "custom":
                _call_as_function(call)
    if out.HasField("tool_choice") and out.tool_choice.WhichOneof("choice") == "raw_json":
        _choice_as_function(out.tool_choice)
    return out, frozenset(names)


def _as_function(tool: chat_pb2.Tool) -> str:
    custom = _custom(tool.extra_json)
    name = str(custom.get("name", ""))
    said = [str(custom["description"])] if custom.get("description") else []
    said.append(_SAID)
    fmt = custom.get("format")
    grammar = fmt.get("grammar") if isinstance(fmt, dict) else None
    if isinstance(grammar, dict):
        syntax, definition = grammar.get("syntax", ""), grammar.get("definition", "")
        said.append(f"The input must match this {syntax} grammar:\n{definition}")
    schema = {
        "type": "object",
        "properties": {_INPUT: {"type": "string", "description": "The tool's input, raw."}},
        "required": [_INPUT],
        "additionalProperties": False,
    }
    tool.Clear()
    tool.type = "function"
    tool.function.name = name
    tool.function.description = "\n\n".join(said)
    tool.function.parameters_json = orjson.dumps(schema).decode()
    return name


def _call_as_function(call: chat_pb2.ToolCall) -> None:
    extra = _loads(call.extra_json)
    custom = extra.pop("custom", None)
    custom = custom if isinstance(custom, dict) else {}
    call.type = "function"
    call.function.name = str(custom.get("name", ""))
    call.function.arguments = orjson.dumps({_INPUT: str(custom.get(_INPUT, ""))}).decode()
    call.extra_json = orjson.dumps(extra).decode() if extra else ""


def _choice_as_function(choice: chat_pb2.ToolChoice) -> None:
    value = orjson.loads(choice.raw_json)
    if isinstance(value, dict) and value.get("type") == "custom":
        choice.function_name = str(_custom(choice.raw_json).get("name", ""))
    elif isinstance(value, dict) and isinstance(value.get("allowed_tools"), dict):
        tools = value["allowed_tools"].get("tools")
        for n, tool in enumerate(tools if isinstance(tools, list) else ()):
            if isinstance(tool, dict) and isinstance(tool.get("custom"), dict):
                function = {"name": tool["custom"].get("name")}
                tools[n] = {"type": "function", "function": function}
        choice.raw_json = orjson.dumps(value).decode()


def restore_completion(completion: chat_pb2.ChatCompletion, names: frozenset[str]) -> None:
    """The calls of emulated tools in `completion` as the custom calls they stand for."""
    for choice in completion.choices:
        for call in choice.message.tool_calls:
            if call.type == "function" and call.function.name in names:
                restore_call(call, input_of(call.function.arguments))


def restore_call(call: chat_pb2.ToolCall, text: str | None) -> None:
    """`call` (of an emulated tool) as a custom call; `text`: its input (None: none yet)."""
    custom: dict[str, Any] = {}
    if call.function.name:
        custom["name"] = call.function.name
    if text is not None:
        custom[_INPUT] = text
    extra = _loads(call.extra_json) | {"custom": custom}
    call.ClearField("function")
    if call.type:
        call.type = "custom"
    call.extra_json = orjson.dumps(extra).decode()


def input_of(arguments: str) -> str:
    """The `input` of an emulated call's arguments; the arguments themselves when the model
    did not write them as asked (the tool reads what it was given)."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    text = value.get(_INPUT) if isinstance(value, dict) else None
    return text if isinstance(text, str) else arguments


def inexpressible_tool(
    params: chat_pb2.ChatParams, kind: str, types: frozenset[str]
) -> UpstreamFailure | None:
    """The UNSUPPORTED_INPUT of a tool of a type an upstream's format (of `kind`, carrying
    `types`) cannot take: not a custom tool (emulated), not an Anthropic server tool (routed
    apart: _server_tools.py). Never dropped silently."""
    for index, tool in enumerate(params.tools):
        if tool.type in types or tool.type in ("", "custom") or server_tool_family(tool.type):
            continue
        return unsupported(
            f"tools[{index}]: tools of type {tool.type!r} cannot be sent to a {kind} "
            "deployment (it takes function tools; custom tools are emulated)",
            f"tools[{index}].type",
        )
    return None


def without_carried_reasoning(params: chat_pb2.ChatParams) -> chat_pb2.ChatParams:
    """`params` as an upstream other than a Responses one gets them: without the reasoning
    items its messages carry (another upstream's encrypted reasoning) and the `include` that
    asked for them (the Responses API's). `params` itself when they have neither."""
    carried = [m for m in params.messages if m.extra_json and REASONING_ITEMS in m.extra_json]
    asks = bool(params.extra_json) and ENCRYPTED in params.extra_json
    if not carried and not asks:
        return params
    out = chat_pb2.ChatParams()
    out.CopyFrom(params)
    for message in out.messages:
        if message.extra_json and REASONING_ITEMS in message.extra_json:
            message.extra_json = _without(message.extra_json, REASONING_ITEMS)
    if asks:
        out.extra_json = _without(out.extra_json, INCLUDE)
    return out


def _without(extra_json: str, key: str) -> str:
    extra = _loads(extra_json)
    extra.pop(key, None)
    return orjson.dumps(extra).decode() if extra else ""
