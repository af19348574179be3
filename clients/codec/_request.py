"""OpenAI chat-completions request body ⇄ ``ChatParams``.

The edge parses a caller's body with :func:`chat_params_from_openai` (strict: a wrong type is the
caller's 400); the router turns ``ChatParams`` back into an OpenAI-dialect upstream body with
:func:`chat_params_to_openai`. For every valid body ``B``,
``chat_params_to_openai(chat_params_from_openai(B)[0]) == B`` without ``stream``.

Known normalisations: a JSON integer in a double field (``"temperature": 1``) comes back as the
same number written as a float (``1.0``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clients.codec._json import (
    assign,
    at,
    at_index,
    dump_extra,
    dump_json,
    enum_name,
    expect_bool,
    expect_int,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail_type,
    has,
    load_json,
    merge_extra,
    missing,
    split_known,
)
from clients.codec._messages import message_from_openai, message_to_openai
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

# The most alternatives a step's `top_logprobs` asks for: OpenAI's bound (Gemini's and Vertex
# AI's `logprobs` too), checked by the router for every entrance (a legacy completion's
# `logprobs` becomes it).
MOST_TOP_LOGPROBS = 20
# Optional scalars of ChatParams (proto3 `optional`), each with the reader for its JSON type.
_SCALARS: dict[str, Callable[[Any, str], Any]] = {
    "temperature": expect_number,
    "top_p": expect_number,
    "presence_penalty": expect_number,
    "frequency_penalty": expect_number,
    "max_tokens": expect_int,
    "max_completion_tokens": expect_int,
    "n": expect_int,
    "seed": expect_int,
    "top_logprobs": expect_int,
    "logprobs": expect_bool,
    "parallel_tool_calls": expect_bool,
    "user": expect_str,
}
_PARAM_KEYS = frozenset(
    {"model", "messages", "stop", "metadata", "tools", "tool_choice", "response_format"}
    | {"stream_options", "stream", *_SCALARS}
)
# Body keys the router writes itself, never taken from extras: a `"stream": true` riding in a
# non-streaming call would get an SSE answer that counts against the upstream for everyone.
ROUTER_KEYS = frozenset({"stream"})
# What `extra_json` may not carry (key -> why): the router's own keys, and the fields whose
# typed value the router bounds (`server.max_tokens_ceiling`, `server.max_n`), which an extra
# would bypass.
_BOUNDED = frozenset({"max_tokens", "max_completion_tokens", "n"})
_NOT_EXTRA = {key: "the router sets it" for key in ROUTER_KEYS} | {
    key: f"set the `{key}` field, which the router holds to its ceiling" for key in _BOUNDED
}
_TOOL_KEYS = frozenset({"type", "function"})
_MODES: dict[str, chat_pb2.ToolChoiceMode.ValueType] = {
    "none": chat_pb2.TOOL_CHOICE_MODE_NONE,
    "auto": chat_pb2.TOOL_CHOICE_MODE_AUTO,
    "required": chat_pb2.TOOL_CHOICE_MODE_REQUIRED,
}
_MODE_NAMES = {value: name for name, value in _MODES.items()}
_FORMATS: dict[str, chat_pb2.ResponseFormatType.ValueType] = {
    "text": chat_pb2.RESPONSE_FORMAT_TYPE_TEXT,
    "json_object": chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
    "json_schema": chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
}
_FORMAT_NAMES = {value: name for name, value in _FORMATS.items()}


def chat_params_from_openai(body: dict[str, Any]) -> tuple[chat_pb2.ChatParams, bool]:
    """Parse a caller's request body; returns the params and the ``stream`` flag.

    Raises :class:`InvalidRequestError` naming the JSON path of the first wrong value.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    # A bounded field sent as null is unset, as OpenAI reads it (the SDK sends `None` so): an
    # extra may not carry it.
    typed, extra = split_known(body, _PARAM_KEYS, nullable=_BOUNDED)
    for key in ROUTER_KEYS:  # `"stream": null` means not streaming; it is never forwarded.
        extra.pop(key, None)
    stream = expect_bool(typed["stream"], "stream") if "stream" in typed else False
    params = chat_pb2.ChatParams()
    _read_required(params, typed, extra)
    for key, read in _SCALARS.items():
        if key in typed:
            setattr(params, key, read(typed[key], key))
    if "stop" in typed:
        _stop_from_openai(params, typed["stop"])
    if "metadata" in typed:
        metadata = expect_object(typed["metadata"], "metadata")
        if not metadata:
            extra["metadata"] = metadata
        for key, value in metadata.items():
            params.metadata[key] = expect_str(value, at("metadata", key))
    if "tools" in typed:
        tools = expect_list(typed["tools"], "tools")
        if not tools:
            extra["tools"] = tools
        params.tools.extend(tool_from_openai(t, at_index("tools", i)) for i, t in enumerate(tools))
    if "tool_choice" in typed:
        assign(params.tool_choice, _tool_choice_from_openai(typed["tool_choice"], "tool_choice"))
    _read_exact_objects(params, typed, extra)
    params.extra_json = dump_extra(extra, "")
    return params, stream


def chat_params_to_openai(params: chat_pb2.ChatParams) -> dict[str, Any]:
    """The OpenAI-dialect body for ``params`` (without ``stream``, which the caller adds)."""
    out: dict[str, Any] = {}
    if params.model:
        out["model"] = params.model
    if params.messages:
        out["messages"] = [
            message_to_openai(m, at_index("messages", i), role_required=True)
            for i, m in enumerate(params.messages)
        ]
    for key, read in _SCALARS.items():
        if has(params, key):
            value = getattr(params, key)
            # Doubles are checked again: a protobuf built elsewhere may hold a NaN temperature.
            out[key] = expect_number(value, key) if read is expect_number else value
    stop = params.WhichOneof("stop")
    if stop == "stop_text":
        out["stop"] = params.stop_text
    elif stop == "stop_list":
        out["stop"] = list(params.stop_list.values)
    if params.metadata:
        out["metadata"] = dict(params.metadata)
    if params.tools:
        out["tools"] = [tool_to_openai(t, at_index("tools", i)) for i, t in enumerate(params.tools)]
    if params.HasField("tool_choice"):
        out["tool_choice"] = _tool_choice_to_openai(params.tool_choice)
    if params.HasField("response_format"):
        out["response_format"] = _response_format_to_openai(params.response_format)
    if params.HasField("stream_options"):
        out["stream_options"] = _stream_options_to_openai(params.stream_options)
    return merge_extra(out, params.extra_json, "", reserved=_NOT_EXTRA)


def _read_required(
    params: chat_pb2.ChatParams, typed: dict[str, Any], extra: dict[str, Any]
) -> None:
    if "model" not in typed:
        missing("model")
    params.model = expect_str(typed["model"], "model")
    if not params.model:
        extra["model"] = ""
    if "messages" not in typed:
        missing("messages")
    messages = expect_list(typed["messages"], "messages")
    if not messages:
        extra["messages"] = messages
    for i, message in enumerate(messages):
        path = at_index("messages", i)
        params.messages.append(message_from_openai(message, path, role_required=True))


def _read_exact_objects(
    params: chat_pb2.ChatParams, typed: dict[str, Any], extra: dict[str, Any]
) -> None:
    """``response_format`` and ``stream_options``: typed when they round-trip, else extras."""
    if "response_format" in typed:
        value = typed["response_format"]
        response_format = _response_format_from_openai(value, "response_format")
        if response_format is None:
            extra["response_format"] = value
        else:
            assign(params.response_format, response_format)
    if "stream_options" in typed:
        value = expect_object(typed["stream_options"], "stream_options")
        options = chat_pb2.StreamOptions()
        if value.get("include_usage") is not None:
            path = "stream_options.include_usage"
            options.include_usage = expect_bool(value["include_usage"], path)
        if _stream_options_to_openai(options) == value:
            assign(params.stream_options, options)
        else:
            extra["stream_options"] = value


def _stream_options_to_openai(options: chat_pb2.StreamOptions) -> dict[str, Any]:
    return {"include_usage": options.include_usage} if options.HasField("include_usage") else {}


def _stop_from_openai(params: chat_pb2.ChatParams, value: Any) -> None:
    if isinstance(value, str):
        params.stop_text = value
    elif isinstance(value, list):
        params.stop_list.SetInParent()
        params.stop_list.values.extend(
            expect_str(s, at_index("stop", i)) for i, s in enumerate(value)
        )
    else:
        fail_type("stop", "a string or an array of strings", value)


# --- tools ---------------------------------------------------------------------------------------


def tool_from_openai(value: Any, path: str) -> chat_pb2.Tool:
    typed, extra = split_known(expect_object(value, path), _TOOL_KEYS)
    tool = chat_pb2.Tool()
    if "type" in typed:
        tool.type = expect_str(typed["type"], at(path, "type"))
        if not tool.type:
            extra["type"] = ""
    if "function" in typed:
        function = _function_def_from_openai(typed["function"], at(path, "function"))
        if function is None:
            extra["function"] = typed["function"]
        else:
            assign(tool.function, function)
    tool.extra_json = dump_extra(extra, path)
    return tool


def tool_to_openai(tool: chat_pb2.Tool, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tool.type:
        out["type"] = tool.type
    if tool.HasField("function"):
        out["function"] = _function_def_to_openai(tool.function, at(path, "function"))
    return merge_extra(out, tool.extra_json, path)


def _function_def_from_openai(value: Any, path: str) -> chat_pb2.FunctionDefinition | None:
    """A function definition, or ``None`` when it has keys we do not model (kept as extras)."""
    obj = expect_object(value, path)
    function = chat_pb2.FunctionDefinition()
    if obj.get("name") is not None:
        function.name = expect_str(obj["name"], at(path, "name"))
    if obj.get("description") is not None:
        function.description = expect_str(obj["description"], at(path, "description"))
    if obj.get("parameters") is not None:
        parameters = expect_object(obj["parameters"], at(path, "parameters"))
        function.parameters_json = dump_json(parameters, at(path, "parameters"))
    if obj.get("strict") is not None:
        function.strict = expect_bool(obj["strict"], at(path, "strict"))
    return function if _function_def_to_openai(function, path) == obj else None


def _function_def_to_openai(function: chat_pb2.FunctionDefinition, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if function.name:
        out["name"] = function.name
    if function.HasField("description"):
        out["description"] = function.description
    if function.parameters_json:
        out["parameters"] = load_json(function.parameters_json, at(path, "parameters_json"))
    if function.HasField("strict"):
        out["strict"] = function.strict
    return out


def _tool_choice_from_openai(value: Any, path: str) -> chat_pb2.ToolChoice:
    """A mode string, ``{"type": "function", "function": {"name"}}``, or any other shape raw."""
    if isinstance(value, str):
        mode = _MODES.get(value)
        if mode is not None:
            return chat_pb2.ToolChoice(mode=mode)
        return chat_pb2.ToolChoice(raw_json=dump_json(value, path))
    if not isinstance(value, dict):
        fail_type(path, "a string or an object", value)
    obj = value
    function = obj.get("function")
    named = obj.keys() == {"type", "function"} and obj["type"] == "function"
    if named and isinstance(function, dict) and function.keys() == {"name"}:
        name = expect_str(function["name"], at(path, "function.name"))
        return chat_pb2.ToolChoice(function_name=name)
    return chat_pb2.ToolChoice(raw_json=dump_json(obj, path))


def _tool_choice_to_openai(choice: chat_pb2.ToolChoice) -> Any:
    which = choice.WhichOneof("choice")
    if which == "mode":
        return enum_name(_MODE_NAMES, choice.mode, "tool_choice.mode")
    if which == "function_name":
        return {"type": "function", "function": {"name": choice.function_name}}
    if which is None:  # OpenAI's object given to protobufjs, which drops keys no field has
        fail_type("tool_choice", "a tool choice with one of its kinds set", None)
    return load_json(choice.raw_json, "tool_choice.raw_json")


# --- response_format -----------------------------------------------------------------------------


def _response_format_from_openai(value: Any, path: str) -> chat_pb2.ResponseFormat | None:
    obj = expect_object(value, path)
    kind = _FORMATS.get(expect_str(obj["type"], at(path, "type"))) if "type" in obj else None
    if kind is None:
        return None
    response_format = chat_pb2.ResponseFormat(type=kind)
    if obj.get("json_schema") is not None:
        js_path = at(path, "json_schema")
        js = expect_object(obj["json_schema"], js_path)
        schema = response_format.json_schema
        schema.SetInParent()
        if js.get("name") is not None:
            schema.name = expect_str(js["name"], at(js_path, "name"))
        if js.get("description") is not None:
            schema.description = expect_str(js["description"], at(js_path, "description"))
        if js.get("schema") is not None:
            schema_value = expect_object(js["schema"], at(js_path, "schema"))
            schema.schema_json = dump_json(schema_value, at(js_path, "schema"))
        if js.get("strict") is not None:
            schema.strict = expect_bool(js["strict"], at(js_path, "strict"))
    exact = _response_format_to_openai(response_format) == obj
    return response_format if exact else None


def _response_format_to_openai(response_format: chat_pb2.ResponseFormat) -> dict[str, Any]:
    path = "response_format"
    out: dict[str, Any] = {"type": enum_name(_FORMAT_NAMES, response_format.type, at(path, "type"))}
    if response_format.HasField("json_schema"):
        schema = response_format.json_schema
        js: dict[str, Any] = {}
        if schema.name:
            js["name"] = schema.name
        if schema.HasField("description"):
            js["description"] = schema.description
        if schema.schema_json:
            js["schema"] = load_json(schema.schema_json, at(path, "json_schema.schema_json"))
        if schema.HasField("strict"):
            js["strict"] = schema.strict
        out["json_schema"] = js
    return out
