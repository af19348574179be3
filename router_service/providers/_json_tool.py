"""A `json_schema` response_format at a Claude older than 4.5, which refuses structured outputs
(`output_config.format`, Converse's `outputConfig`): emulated with one forced tool whose input
schema is the caller's schema, its input handed back as the message's content.

Followed:
- Anthropic's JSON output by tool use (a tool whose `input_schema` is the wanted shape, forced by
  `tool_choice: {"type": "tool", "name": …}`; a forced tool is never preceded by text):
  https://docs.anthropic.com/en/docs/build-with-claude/tool-use/overview
- LiteLLM does the same for these models (`json_tool_call`): https://docs.litellm.ai/docs/
  completion/json_mode
- Extended thinking refuses a forced tool ("Thinking may not be enabled when tool_choice forces
  tool use"): https://docs.claude.com/en/docs/build-with-claude/extended-thinking

The rewrite is of the OpenAI-dialect body (a function tool and a function tool_choice), which the
Messages and Converse mappers then say in their own words; the answer is unwrapped in the
OpenAI dialect too, unary and streamed (input_json_delta → content deltas). Where the tool could
not say what the caller asked (the caller's own tools beside it, thinking, a schema whose root is
no object: a tool's input is an object; a Claude before 3, which takes no tools) the request is
UNSUPPORTED_INPUT: a 400 when no deployment of the group can take it, never an answer that
ignored the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec.anthropic import output_format
from clients.switchboard.v1 import chat_pb2
from router_service.providers._mapping import unsupported
from router_service.providers._reasoning_claude import takes_output_format, takes_tools

JsonObject = dict[str, Any]

JSON_TOOL = "json_output"
_DESCRIPTION = "Respond with a JSON object that follows this schema."
_JSON_SCHEMA = chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA


def emulates(params: chat_pb2.ChatParams, model: str) -> bool:
    """Whether a call of `params` to the Claude `model` has its `json_schema` as a forced tool."""
    return params.response_format.type == _JSON_SCHEMA and not takes_output_format(model)


def as_forced_tool(body: Mapping[str, Any], model: str, api: str) -> Mapping[str, Any]:
    """`body` with its `json_schema` response_format as the forced `json_output` tool when the
    Claude `model` has no structured outputs; else `body` as it is."""
    structured = output_format(body.get("response_format"))
    if structured is None or takes_output_format(model):
        return body
    if not takes_tools(model):  # Claude 2, Claude Instant: no tool to force
        raise _cannot(api, "this model takes no tools (tool use came with Claude 3)")
    if body.get("tools"):
        raise _cannot(api, "the request's own `tools` cannot be offered beside it")
    schema = structured["schema"]
    if schema.get("type") != "object":
        raise _cannot(api, "its schema's root must be an `object` (a tool's input is one)")
    given = body["response_format"]["json_schema"]
    described = given.get("description")
    function = {
        "name": JSON_TOOL,
        "description": described if isinstance(described, str) else _DESCRIPTION,
        "parameters": dict(schema),
    }
    # the caller's `parallel_tool_calls` stays: the mappers say `false` as Claude's own
    # `disable_parallel_tool_use`, as for the caller's own tools (one call to unwrap, not several)
    dropped = ("response_format", "tool_choice")
    out = {key: value for key, value in body.items() if key not in dropped}
    out["tools"] = [{"type": "function", "function": function}]
    out["tool_choice"] = {"type": "function", "function": {"name": JSON_TOOL}}
    return out


def refuse_thinking(thinking: Any, api: str) -> None:
    """A forced tool with thinking on: Claude refuses the pair. Only the caller's own `thinking`
    is on here (`claude_knobs` makes none from a reasoning effort beside a forced tool), so the
    refusal names that field."""
    if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        raise _cannot(api, "thinking cannot be on with it (turn `thinking` off)")


def _cannot(api: str, why: str) -> Exception:
    return unsupported(
        f"{api} takes a `json_schema` response_format from this model only as a forced tool, "
        f"and {why}.",
        "response_format",
    )


def as_content(completion: JsonObject) -> JsonObject:
    """A mapped completion whose `json_output` call is said as the message's content."""
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        calls = message.get("tool_calls") or []
        kept = [c for c in calls if (c.get("function") or {}).get("name") != JSON_TOOL]
        if len(kept) == len(calls):
            continue
        said = [c["function"].get("arguments") or "" for c in calls if c not in kept]
        message["content"] = (message.get("content") or "") + "".join(said)
        if kept:
            message["tool_calls"] = kept
        else:
            message.pop("tool_calls", None)
            if choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "stop"
    return completion


class ChunkUnwrapper:
    """Mapped stream chunks whose `json_output` call is said as content deltas: its argument
    text (input_json_delta) as `content`, its `tool_calls` finish as `stop`. The call's start
    is the answer's: shown as the object's opening `{` (a tool's input is always an object),
    it commits the stream as a visible tool call's start does, whereas Claude's first argument
    text waits for a whole first key and value (a long one: past the first-chunk window)."""

    __slots__ = ("_index", "_opened")

    def __init__(self) -> None:
        self._index: int | None = None  # the tool call's OpenAI index once started
        self._opened = False  # the `{` said at the start, not yet met in the arguments

    def chunks(self, chunks: list[JsonObject]) -> list[JsonObject]:
        for chunk in chunks:
            for choice in chunk.get("choices") or ():
                self._choice(choice)
        return chunks

    def _choice(self, choice: JsonObject) -> None:
        delta = choice.get("delta")
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        if calls and isinstance(delta, dict):
            kept = []
            for call in calls:
                function = call.get("function") or {}
                if function.get("name") == JSON_TOOL:  # a second call's text follows (as unary)
                    if self._index is None:
                        self._opened = True
                        delta["content"] = (delta.get("content") or "") + "{"
                    self._index = call.get("index")
                if self._index is None or call.get("index") != self._index:
                    kept.append(call)
                elif said := function.get("arguments"):
                    if self._opened:  # its first text: past the `{` said at the start
                        said = self._past_opening(said)
                    delta["content"] = (delta.get("content") or "") + said
            if kept:
                delta["tool_calls"] = kept
            else:
                del delta["tool_calls"]
        if self._index is not None and choice.get("finish_reason") == "tool_calls":
            choice["finish_reason"] = "stop"

    def _past_opening(self, text: str) -> str:
        """The call's argument text past the `{` said at its start (blanks before it dropped)."""
        if not text.strip():
            return ""
        self._opened = False
        said = text.lstrip()
        return said[1:] if said.startswith("{") else said
