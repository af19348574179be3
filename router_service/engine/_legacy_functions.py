"""OpenAI's legacy `functions` / `function_call` for the upstreams whose API has no such fields
(Claude's Messages API, Gemini, Bedrock, Cohere, the Responses API…): their mappings read `tools`
alone, so the functions were dropped and the model could never call one.

The functions are sent as the function tools they stand for, `function_call` as the `tool_choice`
it stands for ("auto", "none", or `{"name": …}` forcing one of them: that function named), and
the conversation's legacy turns as tool
turns: an assistant's `function_call` as its one tool call (an id made up from its position), a
`function` message as the tool result answering the latest such call. OpenAI answers legacy
functions with one call at most, so `parallel_tool_calls` is false unless the caller said.

The answer comes back in the shape the caller asked in: a choice's tool call as its message's
`function_call` and `finish_reason: "function_call"`, unary (`legacy_completion`) and streamed
(`LegacyCallDeltas`: each call delta as a `function_call` delta). A second call (a model that
called in parallel all the same) has no place in that shape and is left out.

A `function_call` that names none of the functions (OpenAI's 400) is not emulated: the kind's
mapping refuses it (providers/_legacy_functions.py) for the group's next deployment.
OpenAI-format chat APIs take the legacy fields themselves (`Deployment.takes_legacy_functions`).
"""

from __future__ import annotations

from typing import Any

import orjson

from clients.codec._request import tool_from_openai
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

__all__ = ["LegacyCallDeltas", "legacy_completion", "legacy_emulated"]

_CHOICES = {"none": chat_pb2.TOOL_CHOICE_MODE_NONE, "auto": chat_pb2.TOOL_CHOICE_MODE_AUTO}
_FUNCTION_CALL = "function_call"


def legacy_emulated(params: chat_pb2.ChatParams) -> tuple[chat_pb2.ChatParams, bool]:
    """`params` with their legacy functions as tools, and whether they had any (the answer's
    calls to write as legacy ones); `params` itself when there are none to emulate."""
    if "functions" not in params.extra_json:  # the common case: no parse
        return params, False
    extra: dict[str, Any] = orjson.loads(params.extra_json)
    functions, choice = extra.get("functions"), extra.get(_FUNCTION_CALL)
    if not isinstance(functions, list) or not functions or params.tools:
        return params, False  # none (dropped as OpenAI's empty array); beside `tools`: refused
    try:
        tools = [
            tool_from_openai({"type": "function", "function": f}, f"functions[{i}]")
            for i, f in enumerate(functions)
        ]
    except InvalidRequestError:
        return params, False  # not functions: OpenAI's API refuses them, nothing to call here
    tool_choice = _tool_choice(choice, {tool.function.name for tool in tools})
    if tool_choice is None:
        return params, False  # names none of them: refused where it cannot go
    out = chat_pb2.ChatParams()
    out.CopyFrom(params)
    out.tools.extend(tools)
    if choice is not None:
        out.tool_choice.CopyFrom(tool_choice)
    if not out.HasField("parallel_tool_calls"):
        out.parallel_tool_calls = False  # the legacy shape holds one call
    del extra["functions"]
    extra.pop(_FUNCTION_CALL, None)
    out.extra_json = orjson.dumps(extra).decode() if extra else ""
    _turns_as_tools(out.messages)
    return out, True


def _tool_choice(choice: Any, names: set[str]) -> chat_pb2.ToolChoice | None:
    """The `tool_choice` a legacy `function_call` stands for (an empty one when it is unsaid);
    None when it is none: a forced name that is not among the functions (no_forced_legacy_call
    refuses it) or another shape."""
    if choice is None:
        return chat_pb2.ToolChoice()
    if isinstance(choice, str):
        return chat_pb2.ToolChoice(mode=_CHOICES[choice]) if choice in _CHOICES else None
    name = choice.get("name") if isinstance(choice, dict) and len(choice) == 1 else None
    return (
        chat_pb2.ToolChoice(function_name=name) if isinstance(name, str) and name in names else None
    )


def _turns_as_tools(messages: Any) -> None:
    """The conversation's legacy calls and results as tool calls and tool results, in place:
    each `function` message right after a call (only results between) answers a call of its
    own id, the first the assistant's call, a further one a call added for it beside that one
    (the same function and arguments; for a result of another name, that name and `{}`):
    providers refuse two results of one id (Claude, Bedrock) or more results than calls
    (Gemini). A `function` message after no call stays one."""
    calling: chat_pb2.ChatMessage | None = None  # the message of the call results answer
    at = 0  # where its legacy call is among its tool calls (after any of the caller's own)
    answered = 0  # how many results answered it
    for n, message in enumerate(messages):
        if message.HasField(_FUNCTION_CALL):
            calling, at = message, len(message.tool_calls)
            call = message.tool_calls.add(id=f"call_function_{n}", type="function")
            call.function.CopyFrom(message.function_call)
            message.ClearField(_FUNCTION_CALL)
            answered = 0
        elif message.role == chat_pb2.ROLE_FUNCTION and calling is not None:
            message.role = chat_pb2.ROLE_TOOL
            first = calling.tool_calls[at]
            if answered:
                first = _call_beside(calling, first, message.name, f"{first.id}_{n}")
            message.tool_call_id = first.id
            answered += 1
        elif message.role != chat_pb2.ROLE_TOOL:
            calling = None


def _call_beside(
    calling: chat_pb2.ChatMessage, first: chat_pb2.ToolCall, name: str, call_id: str
) -> chat_pb2.ToolCall:
    """A call added to `calling` beside its legacy `first`, for a further result named `name`."""
    call = calling.tool_calls.add(id=call_id, type="function")
    if not name or name == first.function.name:
        call.function.CopyFrom(first.function)
    else:
        call.function.name, call.function.arguments = name, "{}"
    return call


def legacy_completion(completion: chat_pb2.ChatCompletion) -> None:
    """`completion`'s tool calls as legacy function calls, in place."""
    for choice in completion.choices:
        message = choice.message
        if message.tool_calls:
            message.function_call.CopyFrom(message.tool_calls[0].function)
            del message.tool_calls[:]
        _finish_as_function_call(choice)


def _finish_as_function_call(choice: chat_pb2.Choice | chat_pb2.ChunkChoice) -> None:
    if choice.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS:
        choice.finish_reason = chat_pb2.FINISH_REASON_FUNCTION_CALL
        choice.finish_reason_raw = _FUNCTION_CALL


class LegacyCallDeltas:
    """Rewrites a stream's chunks, in place, with each choice's (first) tool call as a legacy
    `function_call` delta."""

    def __init__(self) -> None:
        self._calls: dict[int, int] = {}  # choice index → the index of its one call

    def rewrite(self, chunk: chat_pb2.ChatCompletionChunk) -> None:
        for choice in chunk.choices:
            delta = choice.delta
            if delta.tool_calls:
                first = self._calls.setdefault(choice.index, delta.tool_calls[0].index)
                for call in delta.tool_calls:
                    if call.index == first:
                        delta.function_call.SetInParent()  # said even while both are empty
                        if call.function.name:
                            delta.function_call.name = call.function.name
                        delta.function_call.arguments += call.function.arguments
                del delta.tool_calls[:]
            _finish_as_function_call(choice)
