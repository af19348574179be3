"""The Responses API's tools, tool choice and text formats as their chat-completions options."""

from __future__ import annotations

from typing import Any

from clients.codec._json import (
    at,
    at_index,
    expect_bool,
    expect_int,
    expect_list,
    expect_object,
    expect_str,
    invalid_value,
    missing,
)
from clients.codec._responses_custom import INCLUDE, custom_choice, custom_tool, named
from clients.codec._responses_hosted import HOSTED_ITEM_TYPES, is_hosted_tool
from clients.codec._responses_include import include_values
from clients.errors import InvalidRequestError

_TOOL_MODES = ("auto", "none", "required")


def tool_options(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """``tools``, ``tool_choice``, ``parallel_tool_calls``, sent on only with at least one tool:
    the Responses API takes ``tools: []`` (the Agents SDK sends it for an agent without tools)
    and the tool options beside it, OpenAI's chat API refuses them all without a tool. A
    ``tool_choice`` that forces a call is sent on alone, for the router to refuse (as OpenAI)."""
    tools = expect_list(body["tools"], "tools") if body.get("tools") is not None else []
    choice = body.get("tool_choice")
    choice = _tool_choice(choice, "tool_choice") if choice is not None else None
    parallel = body.get("parallel_tool_calls")
    parallel = expect_bool(parallel, "parallel_tool_calls") if parallel is not None else None
    if not tools:
        if choice not in (None, "none", "auto"):
            chat["tool_choice"] = choice  # forces a call of no tool: the router's 400 says so
        return
    chat["tools"] = [_tool(t, at_index("tools", i)) for i, t in enumerate(tools)]
    if choice is not None:
        chat["tool_choice"] = choice
    if parallel is not None:
        chat["parallel_tool_calls"] = parallel
    if any(is_hosted_tool(str(tool.get("type"))) for tool in chat["tools"]):
        _hosted_options(body, chat)


def _hosted_options(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """Beside a hosted tool (the call then goes to a Responses API deployment alone), what only
    it reads is sent on: `max_tool_calls` and the `include` values of hosted tools' items (a web
    search's sources, a code interpreter's outputs…). Without one they are dropped, as ever."""
    if body.get("max_tool_calls") is not None:
        chat["max_tool_calls"] = expect_int(body["max_tool_calls"], "max_tool_calls")
    hosted = {
        v for v in include_values(body.get("include")) if v.split(".")[0] in HOSTED_ITEM_TYPES
    }
    if hosted:
        chat[INCLUDE] = sorted({*chat.get(INCLUDE, ()), *hosted})


def _tool(value: Any, path: str) -> dict[str, Any]:
    tool = expect_object(value, path)
    kind = expect_str(tool.get("type"), at(path, "type"))
    if kind == "custom":
        return custom_tool(tool, path)
    if is_hosted_tool(kind):  # OpenAI runs it: for a Responses API deployment, as it is
        return dict(tool)
    if kind != "function":
        raise InvalidRequestError(
            f"Tools of type {kind!r} are not supported: only 'function' and 'custom' tools, "
            "and OpenAI's hosted tools (web search, file search, code interpreter, image "
            "generation, MCP, local shell, computer use) for a Responses API deployment.",
            param=at(path, "type"),
        )
    function = named(tool, path)
    if tool.get("parameters") is not None:
        function["parameters"] = expect_object(tool["parameters"], at(path, "parameters"))
    if tool.get("strict") is not None:
        function["strict"] = expect_bool(tool["strict"], at(path, "strict"))
    return {"type": "function", "function": function}


def _tool_choice(value: Any, path: str) -> Any:
    if isinstance(value, str):
        if value not in _TOOL_MODES:
            invalid_value(path, value, _TOOL_MODES)
        return value
    obj = expect_object(value, path)
    if obj.get("type") == "function" and obj.get("name") is not None:
        return {"type": "function", "function": {"name": expect_str(obj["name"], at(path, "name"))}}
    if obj.get("type") == "custom" and obj.get("name") is not None:
        return custom_choice(obj, path)
    if is_hosted_tool(str(obj.get("type"))):  # {"type": "web_search"}, {"type": "mcp", …}
        return dict(obj)
    raise InvalidRequestError(
        "Only 'auto', 'none', 'required', {'type': 'function', 'name': …}, {'type': "
        "'custom', 'name': …} or a hosted tool's {'type': …} are supported as 'tool_choice' "
        "here.",
        param=path,
    )


def text_options(text: dict[str, Any], chat: dict[str, Any]) -> None:
    if text.get("verbosity") is not None:
        chat["verbosity"] = expect_str(text["verbosity"], "text.verbosity")
    if text.get("format") is None:
        return
    fmt = expect_object(text["format"], "text.format")
    kind = expect_str(fmt.get("type"), "text.format.type")
    if kind in ("text", "json_object"):
        chat["response_format"] = {"type": kind}
        return
    if kind != "json_schema":
        invalid_value("text.format.type", kind, ("text", "json_object", "json_schema"))
    schema: dict[str, Any] = {}
    if fmt.get("name") is None:
        missing("text.format.name")
    schema["name"] = expect_str(fmt["name"], "text.format.name")
    if fmt.get("description") is not None:
        schema["description"] = expect_str(fmt["description"], "text.format.description")
    if fmt.get("schema") is None:
        missing("text.format.schema")
    schema["schema"] = expect_object(fmt["schema"], "text.format.schema")
    if fmt.get("strict") is not None:
        schema["strict"] = expect_bool(fmt["strict"], "text.format.strict")
    chat["response_format"] = {"type": "json_schema", "json_schema": schema}
