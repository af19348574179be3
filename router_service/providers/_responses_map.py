"""Chat completions ⇄ OpenAI's Responses API (`POST /responses`), for the deployments called on
it (`api: responses`: the models OpenAI serves only there, _responses_models.py).

The request starts from the OpenAI chat body the codec writes (`chat_params_to_openai`, the
reasoning knob fitted by `for_openai`) and becomes a Responses body, here; a Response becomes an
OpenAI `chat.completion` object, which the codec parses (_responses_answer.py). The edge's
Responses entrance maps the other way (clients/codec/_responses_*.py); the finish reason ⇄
`incomplete_details.reason` table is its. Followed:
https://platform.openai.com/docs/api-reference/responses/create and the openai SDK's types
(`openai.types.responses`).

- messages → `input` items: system and developer messages stay messages of their role; user
  text, image and file parts → `input_text`, `input_image`, `input_file`; assistant text → an
  assistant message of `output_text`; its `tool_calls` → `function_call` items (`call_id`);
  tool messages → `function_call_output` (its text, or with an image or file its parts, as the
  Responses API takes them). Audio parts have no Responses form: refused. Custom
  tools, their calls and the reasoning items an assistant message carries: _responses_custom.py.
- `max_tokens` / `max_completion_tokens` → `max_output_tokens`; `reasoning_effort` →
  `reasoning: {effort, summary: "auto"}` (the summary is the answer's `reasoning_content`);
  `response_format` / `verbosity` → `text`; function tools flattened; `store: false` always.
- `logprobs` / `top_logprobs` → `include: ["message.output_text.logprobs"]` / `top_logprobs`
  (_responses_logprobs.py). Chat-only knobs with no Responses counterpart (`n` > 1,
  `presence_penalty`, `frequency_penalty`, `logit_bias`, `seed`), and a token limit under the
  Responses API's least (16), are an UNSUPPORTED_INPUT: another deployment of the group may
  take them. Stop sequences are the router's to enforce (the dialect's stop cap is 0:
  engine/_stops.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson

from clients.codec._responses_hosted import is_hosted_tool
from clients.switchboard.v1 import chat_pb2
from router_service.errors import UpstreamFailure
from router_service.providers._legacy_functions import no_forced_legacy_call
from router_service.providers._mapping import (
    JsonObject,
    image_url,
    max_tokens,
    parts_of,
    passthrough,
    text_of,
    unsupported,
)
from router_service.providers._media import unsupported_in
from router_service.providers._responses_custom import (
    custom_call_items,
    custom_choice,
    custom_tool,
    reasoning_inputs,
)
from router_service.providers._responses_logprobs import ask_logprobs

# Chat options the Responses API has under the same name.
_SAME_NAME = (
    "temperature", "top_p", "user", "safety_identifier", "metadata", "parallel_tool_calls",
    "service_tier", "prompt_cache_key", "prompt_cache_retention",
)  # fmt: skip
# Chat-only knobs (a typed field of ChatParams, or an extra): no Responses counterpart.
_CHAT_ONLY_FIELDS: tuple[Literal["seed", "presence_penalty", "frequency_penalty"], ...]
_CHAT_ONLY_FIELDS = ("seed", "presence_penalty", "frequency_penalty")
# Chat options sent as extras that the Responses API (a chat caller's, here) cannot honour: audio
# output, predicted outputs, the search models' web search. Dropped, the answer would silently
# be another than asked; refused, another deployment may honour them.
_CHAT_ONLY_EXTRAS = ("logit_bias", "audio", "prediction", "web_search_options", "modalities")
# The least `max_output_tokens` the Responses API takes (a 400 under it).
MIN_OUTPUT_TOKENS = 16


def cannot_express(params: chat_pb2.ChatParams) -> UpstreamFailure | None:
    """The UNSUPPORTED_INPUT of a chat request the Responses API cannot carry; None when it can.
    Pure: asked before a key is leased."""
    if params.HasField("n") and params.n > 1:
        return _chat_only("n")
    for name in _CHAT_ONLY_FIELDS:
        if params.HasField(name):
            return _chat_only(name)
    limit = _output_limit(params)
    if limit is not None and limit[1] < MIN_OUTPUT_TOKENS:
        message = f"'{limit[0]}': {limit[1]}; this model (on the Responses API) takes at least "
        return unsupported(f"{message}{MIN_OUTPUT_TOKENS}", limit[0])
    if params.extra_json and any(key in params.extra_json for key in _CHAT_ONLY_EXTRAS):
        extra = orjson.loads(params.extra_json)
        for key in _CHAT_ONLY_EXTRAS:
            if isinstance(extra, dict) and key in extra and not _text_only(key, extra[key]):
                return _chat_only(key)
    return unsupported_in(params, lambda body: request_body(body, stream=False))


def _text_only(key: str, value: Any) -> bool:
    """Whether an extra asks for nothing the Responses API lacks: `modalities: ["text"]` is
    what it answers anyway."""
    return key == "modalities" and isinstance(value, list) and set(value) <= {"text"}


def _output_limit(params: chat_pb2.ChatParams) -> tuple[str, int] | None:
    """The output token limit the call sends (`max_output_tokens`), by the name it was asked by:
    `max_completion_tokens` over `max_tokens`, as `max_tokens` (_mapping.py) reads them."""
    if params.HasField("max_completion_tokens"):
        return "max_completion_tokens", params.max_completion_tokens
    return ("max_tokens", params.max_tokens) if params.HasField("max_tokens") else None


def _chat_only(name: str) -> UpstreamFailure:
    return unsupported(
        f"'{name}' is a chat completions option the Responses API (this model's) has not", name
    )


def request_body(
    chat: Mapping[str, Any], *, stream: bool, summary: bool = True, reasoning: bool = True
) -> JsonObject:
    """The Responses body of an OpenAI chat body (`chat`, the reasoning knob fitted); `summary`:
    the effort asks for a reasoning summary (not where it is refused: _responses_summaries.py);
    `reasoning`: the reasoning items the messages carry go back (not where they were refused)."""
    no_forced_legacy_call(chat)
    body: JsonObject = {
        "model": chat["model"],
        "input": input_items(chat.get("messages") or [], reasoning=reasoning),
        "store": False,
    }
    for key in _SAME_NAME:
        if chat.get(key) is not None:
            body[key] = chat[key]
    limit = max_tokens(chat)
    if limit is not None:
        body["max_output_tokens"] = limit
    effort = chat.get("reasoning_effort")
    if isinstance(effort, str):
        body["reasoning"] = {"effort": effort, "summary": "auto"} if summary else {"effort": effort}
    text = _text(chat)
    if text:
        body["text"] = text
    tools = [_tool(t) for t in chat.get("tools") or () if isinstance(t, dict)]
    if tools:
        body["tools"] = tools
        if chat.get("tool_choice") is not None:
            body["tool_choice"] = _tool_choice(chat["tool_choice"])
    elif "parallel_tool_calls" in body:
        del body["parallel_tool_calls"]  # as chat completions, not without tools
    if stream:
        body["stream"] = True
    body = {**passthrough(chat), **body}
    ask_logprobs(chat, body)
    return body


def input_items(messages: list[Any], *, reasoning: bool = True) -> list[JsonObject]:
    items: list[JsonObject] = []
    custom: set[str] = set()  # the ids of custom tool calls: their outputs are custom too
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "tool":
            output = _tool_output(message.get("content"))
            call_id = str(message.get("tool_call_id", ""))
            kind = "custom_tool_call_output" if call_id in custom else "function_call_output"
            items.append({"type": kind, "call_id": call_id, "output": output})
        elif role == "assistant":
            calls = custom_call_items(message)
            custom.update(calls)
            said = _assistant_items(message, calls)
            items += reasoning_inputs(message, said, reasoning=reasoning)
        else:
            parts = [_input_part(p) for p in parts_of(message.get("content"))]
            items.append({"type": "message", "role": str(role), "content": parts})
    return items


def _tool_output(content: Any) -> str | list[JsonObject]:
    """A tool message's content as a call output: its text, or, with an image or a file
    among its parts, the parts themselves (the Responses API takes `input_text`,
    `input_image` and `input_file` there: a tool's screenshot is not dropped)."""
    parts = parts_of(content)
    if all(part.get("type") == "text" for part in parts):
        return text_of(content)
    return [_input_part(part) for part in parts]


def _assistant_items(
    message: Mapping[str, Any], custom: Mapping[str, JsonObject]
) -> list[JsonObject]:
    """`custom`: the message's custom calls as items, by call id."""
    items: list[JsonObject] = []
    text = text_of(message.get("content"))
    if text:
        content = [{"type": "output_text", "text": text, "annotations": []}]
        items.append({"type": "message", "role": "assistant", "content": content})
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict) and str(call.get("id", "")) in custom:
            items.append(custom[str(call.get("id", ""))])
            continue
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        items.append(
            {
                "type": "function_call",
                "call_id": str(call.get("id", "")),
                "name": str(function.get("name", "")),
                "arguments": str(function.get("arguments") or "{}"),
            }
        )
    return items


def _input_part(part: Mapping[str, Any]) -> JsonObject:
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        detail = image.get("detail") if isinstance(image, dict) else None
        return {"type": "input_image", "image_url": image_url(part), "detail": detail or "auto"}
    if kind == "file":
        file = part.get("file")
        fields = file.items() if isinstance(file, dict) else ()
        return {"type": "input_file", **{k: v for k, v in fields if v is not None}}
    raise unsupported(f"the Responses API takes no {kind!r} content parts", "messages")


def _text(chat: Mapping[str, Any]) -> JsonObject:
    text: JsonObject = {}
    if chat.get("verbosity") is not None:
        text["verbosity"] = chat["verbosity"]
    fmt = chat.get("response_format")
    if not isinstance(fmt, dict):
        return text
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        text["format"] = {"type": "json_schema", **fmt["json_schema"]}
    elif fmt.get("type") in ("text", "json_object"):
        text["format"] = {"type": fmt["type"]}
    return text


def _tool(tool: Mapping[str, Any]) -> JsonObject:
    custom = custom_tool(tool)
    if custom is not None:
        return custom
    if is_hosted_tool(str(tool.get("type"))):  # OpenAI's hosted tools: as the caller sent them
        return dict(tool)
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        kind = tool.get("type")
        raise unsupported(f"the Responses API dialect maps no {kind!r} tools", "tools")
    out: JsonObject = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters", "strict"):
        if function.get(key) is not None:
            out[key] = function[key]
    return out


def _tool_choice(choice: Any) -> Any:
    custom = custom_choice(choice)
    if custom is not None:
        return custom
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name")}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return _allowed_tools(choice.get("allowed_tools"))
    return choice


def _allowed_tools(allowed: Any) -> JsonObject:
    """Chat's `allowed_tools` choice (`{mode, tools: [{type: function, function: {name}}]}`
    under `allowed_tools`) as the Responses API's (`mode` and `tools: [{type, name}]` flat)."""
    if not isinstance(allowed, dict):
        raise unsupported("'tool_choice.allowed_tools' must be an object", "tool_choice")
    tools: list[JsonObject] = []
    for tool in allowed.get("tools") or ():
        custom = custom_choice(tool)
        if custom is not None:
            tools.append(custom)
            continue
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type", "function") != "function":
            raise unsupported("the Responses API dialect maps function tools only", "tool_choice")
        tools.append({"type": "function", "name": function.get("name")})
    return {"type": "allowed_tools", "mode": allowed.get("mode"), "tools": tools}
