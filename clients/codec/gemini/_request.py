"""A Gemini API generateContent body → the OpenAI chat body the edge parses for
`/v1/chat/completions` (then `chat_params_from_openai`: one request proto for every entrance).

The inverse of the router's Gemini provider (`router_service/providers/_gemini_map.py`), in the
same OpenAI dialect: a functionCall's `thoughtSignature` rides as the tool call's
`extra_content.google.thought_signature`, `topK` as `top_k`, where that provider takes them
back. What OpenAI's chat API cannot say is refused (400), naming its path, as the Anthropic
entrance refuses it; unknown fields too.

Followed:
- GenerateContentRequest, GenerationConfig: https://ai.google.dev/api/generate-content
- Content, Part, Tool, FunctionDeclaration, ToolConfig: https://ai.google.dev/api/caching
- Function calling: `_results` (functionResponse parts as `tool` messages).
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import (
    at,
    at_index,
    dump_json,
    expect_int,
    expect_int32,
    expect_list,
    expect_object,
    expect_str,
    invalid_value,
    missing,
)
from clients.codec.gemini._carried import CARRIED, CARRIED_CONFIG, GEMINI_ONLY, carried_fields
from clients.codec.gemini._content import json_schema, user_part
from clients.codec.gemini._results import Calls, tool_result
from clients.codec.gemini._tables import CALLING_MODES, CONFIG_KEYS
from clients.codec.gemini._thinking import reasoning_knob
from clients.errors import InvalidRequestError

__all__ = ["SAME", "chat_messages", "chat_tools", "model_name", "openai_chat_body"]

JsonObject = dict[str, Any]

_KNOWN = frozenset(
    {"model", "contents", "systemInstruction", "generationConfig", "tools", "toolConfig"}
    | {"cachedContent", *CARRIED}
)
# generationConfig fields → OpenAI's chat keys, taken as they are: the router's Gemini
# provider's (`CONFIG_KEYS`) the other way round, and those it maps itself.
SAME = {native: key for key, native in CONFIG_KEYS.items()} | {
    "topK": "top_k",  # not OpenAI's: what the Gemini, Anthropic and vLLM upstreams take
    "maxOutputTokens": "max_tokens",
}
_CONFIG = frozenset(SAME) | {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseModalities",
    *CARRIED_CONFIG,
}
# generationConfig's integer fields: proto JSON reads a number with no fraction as one (Gemini
# takes `"topK": 40.0`, which google-genai sends: it types `top_k` a float).
_INTEGERS = frozenset({"candidateCount", "seed", "logprobs", "topK", "maxOutputTokens"})
_MODES = {mode: choice for choice, mode in CALLING_MODES.items()} | {
    "MODE_UNSPECIFIED": "auto",
    "VALIDATED": "auto",  # calls checked against their schemas: OpenAI's `auto` does not say
}


def model_name(value: str) -> str:
    """A model as Gemini names it (`models/x`, or `x`) → the model the router knows (`x`)."""
    return value.removeprefix("models/")


def openai_chat_body(model: str, body: dict[str, Any], stream: bool) -> JsonObject:
    """The OpenAI chat body that says what the generateContent `body` says."""
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise InvalidRequestError(
            f"{unknown[0]}: not supported by this gateway's Gemini API "
            f"(supported: {', '.join(sorted(_KNOWN))})",
            unknown[0],
        )
    if body.get("cachedContent") is not None:
        raise InvalidRequestError(
            "cachedContent: cached contents are not supported by this gateway; send the "
            "contents with the request",
            "cachedContent",
        )
    if "contents" not in body:
        missing("contents")
    messages = [message for _, message in chat_messages(body)]
    out: JsonObject = {"model": model, "messages": messages}
    if body.get("generationConfig") is not None:
        out.update(_generation_config(body["generationConfig"]))
    if body.get("tools"):
        out.update(chat_tools(body["tools"], body.get("toolConfig")))
    elif body.get("toolConfig") is not None:
        _tool_choice(body["toolConfig"], [])  # checked: AUTO and NONE are dropped, ANY refused
    carried = carried_fields(body)  # for a Gemini deployment only: `_carried`
    if carried:
        out[GEMINI_ONLY] = carried
    if stream:
        # The usage comes in the stream's last chunk, for the last response's usageMetadata.
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    return out


def _system(value: Any) -> list[JsonObject]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}] if value else []
    content = expect_object(value, "systemInstruction")
    text = "".join(_texts(content.get("parts"), "systemInstruction.parts"))
    return [{"role": "system", "content": text}] if text else []


def _texts(parts: Any, path: str) -> list[str]:
    out = []
    for i, part in enumerate(expect_list(parts, path)):
        where = at_index(path, i)
        part = expect_object(part, where)
        if "text" not in part:
            raise InvalidRequestError(f"{where}: only text parts are taken here", where)
        out.append(expect_str(part["text"], at(where, "text")))
    return out


def chat_messages(body: JsonObject) -> list[tuple[str, JsonObject]]:
    """The OpenAI messages of a generateContent body, each with the path of what it came from
    (`systemInstruction`, `contents[i]`): a turn's functionResponses are messages of their own."""
    system = [("systemInstruction", m) for m in _system(body.get("systemInstruction"))]
    return system + _messages(body["contents"])


def _messages(value: Any) -> list[tuple[str, JsonObject]]:
    contents = expect_list(value, "contents")
    if not contents:
        raise InvalidRequestError("contents: at least one content is required", "contents")
    calls = Calls()
    out: list[tuple[str, JsonObject]] = []
    for i, content in enumerate(contents):
        path = at_index("contents", i)
        content = expect_object(content, path)
        role = expect_str(content.get("role", "user"), at(path, "role"))
        if "parts" not in content:
            missing(at(path, "parts"))
        parts = [
            expect_object(part, at_index(at(path, "parts"), j))
            for j, part in enumerate(expect_list(content["parts"], at(path, "parts")))
        ]
        if role == "model":
            out.append((path, _model_turn(parts, at(path, "parts"), calls, i)))
        elif role in ("user", "function"):  # `function`: the older API's turn of results
            out += [(path, m) for m in _user_turn(parts, at(path, "parts"), calls)]
        else:
            invalid_value(at(path, "role"), role, ("user", "model"))
    return out


def _user_turn(parts: list[JsonObject], path: str, calls: Calls) -> list[JsonObject]:
    """A user turn: its functionResponses become OpenAI `tool` messages (first: they answer
    the turn before), the rest one user message."""
    results: list[JsonObject] = []
    content: list[JsonObject] = []
    for j, part in enumerate(parts):
        where = at_index(path, j)
        if "functionResponse" in part:
            where = at(where, "functionResponse")
            results.append(tool_result(part["functionResponse"], where, calls))
        else:
            content.append(user_part(part, where))
    if not content:
        return results
    if all(part["type"] == "text" for part in content):
        # Text alone: the one form every OpenAI-compatible server takes.
        return [*results, {"role": "user", "content": "".join(p["text"] for p in content)}]
    return [*results, {"role": "user", "content": content}]


def _model_turn(parts: list[JsonObject], path: str, calls: Calls, turn: int) -> JsonObject:
    """A model turn: its text, and its function calls (with their thought signatures, kept for
    a Gemini upstream, which wants them back). Thoughts are dropped, as Gemini drops them."""
    texts: list[str] = []
    tool_calls: list[JsonObject] = []
    for j, part in enumerate(parts):
        where = at_index(path, j)
        if "functionCall" in part:
            call = _tool_call(part, at(where, "functionCall"), f"call_{turn}_{j}")
            calls.made(call["function"]["name"], call["id"])
            tool_calls.append(call)
        elif "text" in part:
            text = expect_str(part["text"], at(where, "text"))
            if not part.get("thought"):
                texts.append(text)
        else:
            raise InvalidRequestError(
                f"{where}: a model turn takes text and functionCall parts", where
            )
    message: JsonObject = {"role": "assistant"}
    if texts or not tool_calls:
        message["content"] = "".join(texts)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _tool_call(part: JsonObject, path: str, default_id: str) -> JsonObject:
    call = expect_object(part["functionCall"], path)
    if "name" not in call:
        missing(at(path, "name"))
    args = dump_json(expect_object(call.get("args") or {}, at(path, "args")), at(path, "args"))
    out: JsonObject = {
        "id": expect_str(call["id"], at(path, "id")) if call.get("id") else default_id,
        "type": "function",
        "function": {"name": expect_str(call["name"], at(path, "name")), "arguments": args},
    }
    signature = part.get("thoughtSignature")
    if signature is not None:
        signature = expect_str(signature, path.removesuffix(".functionCall") + ".thoughtSignature")
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def _generation_config(value: Any) -> JsonObject:
    config = expect_object(value, "generationConfig")
    unknown = sorted(set(config) - _CONFIG)
    if unknown:
        where = at("generationConfig", unknown[0])
        raise InvalidRequestError(
            f"{where}: not supported by this gateway's Gemini API "
            f"(supported: {', '.join(sorted(_CONFIG))})",
            where,
        )
    out = {SAME[key]: _integral(key, config[key]) for key in SAME if config.get(key) is not None}
    path = "generationConfig.maxOutputTokens"
    if "max_tokens" in out and expect_int(out["max_tokens"], path) < 1:
        raise InvalidRequestError(f"{path}: must be at least 1", path)
    path = "generationConfig.topK"  # the one field no OpenAI check reads (it rides in extras)
    if "top_k" in out and expect_int32(out["top_k"], path) < 1:
        raise InvalidRequestError(f"{path}: must be at least 1", path)
    if config.get("stopSequences"):
        stops = expect_list(config["stopSequences"], "generationConfig.stopSequences")
        path = "generationConfig.stopSequences"
        out["stop"] = [expect_str(s, at_index(path, i)) for i, s in enumerate(stops)]
    if config.get("thinkingConfig") is not None:
        out.update(reasoning_knob(config["thinkingConfig"]))
    _text_only(config.get("responseModalities"))
    if "top_logprobs" in out:
        out["logprobs"] = True  # OpenAI takes top_logprobs only with logprobs
    format_ = _response_format(config)
    if format_ is not None:
        out["response_format"] = format_
    return out


def _integral(key: str, value: Any) -> Any:
    """An integer field's value with no fraction as the int it is (its checks read ints)."""
    if key in _INTEGERS and type(value) is float and value.is_integer():
        return int(value)
    return value


def _text_only(value: Any) -> None:
    """responseModalities: text (what every deployment answers here, so nothing to send), or
    refused naming the modality no chat answer carries."""
    path = "generationConfig.responseModalities"
    if value is None:
        return
    for i, modality in enumerate(expect_list(value, path)):
        if expect_str(modality, at_index(path, i)) not in ("TEXT", "MODALITY_UNSPECIFIED"):
            where = at_index(path, i)
            raise InvalidRequestError(
                f"{where}: only TEXT answers are supported by this gateway, not {modality}", where
            )


def _response_format(config: JsonObject) -> JsonObject | None:
    path = "generationConfig.responseMimeType"
    mime = expect_str(config.get("responseMimeType", "text/plain"), path)
    schema = config.get("responseJsonSchema", config.get("responseSchema"))
    if mime == "text/plain" and schema is None:
        return None
    if mime != "application/json":
        invalid_value(path, mime, ("text/plain", "application/json"))
    if schema is None:
        return {"type": "json_object"}
    where = "generationConfig.responseJsonSchema"
    if "responseJsonSchema" not in config:
        where = "generationConfig.responseSchema"
    schema = json_schema(expect_object(schema, where))
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def chat_tools(value: Any, tool_config: Any) -> JsonObject:
    """`tools` (and `tool_choice`) for a body's tools and toolConfig."""
    functions: list[JsonObject] = []
    for i, tool in enumerate(expect_list(value, "tools")):
        path = at_index("tools", i)
        tool = expect_object(tool, path)
        other = sorted(set(tool) - {"functionDeclarations"})
        if other:
            where = at(path, other[0])
            raise InvalidRequestError(
                f"{where}: only functionDeclarations are supported by this gateway (Google's "
                "own tools run at Google)",
                where,
            )
        where = at(path, "functionDeclarations")
        declarations = expect_list(tool.get("functionDeclarations", []), where)
        functions += [_function(d, at_index(where, j)) for j, d in enumerate(declarations)]
    out: JsonObject = {"tools": functions}
    if tool_config is not None:
        out.update(_tool_choice(tool_config, functions))
    return out


def _function(value: Any, path: str) -> JsonObject:
    declaration = expect_object(value, path)
    if "name" not in declaration:
        missing(at(path, "name"))
    function: JsonObject = {"name": expect_str(declaration["name"], at(path, "name"))}
    if declaration.get("description") is not None:
        function["description"] = expect_str(declaration["description"], at(path, "description"))
    for key in ("parametersJsonSchema", "parameters"):
        if declaration.get(key) is not None:
            function["parameters"] = json_schema(expect_object(declaration[key], at(path, key)))
            break
    return {"type": "function", "function": function}


def _tool_choice(value: Any, functions: list[JsonObject]) -> JsonObject:
    """toolConfig.functionCallingConfig as tool_choice; ANY's allowedFunctionNames keep those
    functions alone (one named: that function is the choice)."""
    config = expect_object(value, "toolConfig")
    path = "toolConfig.functionCallingConfig"
    calling = expect_object(config.get("functionCallingConfig", {}), path)
    mode = expect_str(calling.get("mode", "AUTO"), at(path, "mode"))
    if mode == "NONE":
        return {"tool_choice": "none"}
    if mode not in _MODES:
        invalid_value(at(path, "mode"), mode, ("AUTO", "ANY", "NONE", "VALIDATED"))
    if mode == "ANY" and not functions:
        # As Gemini answers ("Function calling config is set without function_declarations")
        # and OpenAI's chat API a forced `tool_choice`: dropped, the model would answer in text
        # a caller that asked for a call. However the tools came to hold none (no `tools`, a
        # tool of no declaration), the mode is named, not a chat field the caller never sent.
        raise InvalidRequestError(
            f"{at(path, 'mode')}: a mode that forces a function call is set without "
            "functionDeclarations",
            at(path, "mode"),
        )
    where = at(path, "allowedFunctionNames")
    names = [
        expect_str(n, where) for n in expect_list(calling.get("allowedFunctionNames", []), where)
    ]
    if mode != "ANY" or not names:
        return {"tool_choice": _MODES[mode]}
    unknown = sorted(set(names) - {f["function"]["name"] for f in functions})
    if unknown:
        invalid_value(where, unknown[0], [f["function"]["name"] for f in functions])
    if len(names) == 1:
        return {"tool_choice": {"type": "function", "function": {"name": names[0]}}}
    kept = [f for f in functions if f["function"]["name"] in names]
    return {"tools": kept, "tool_choice": "required"}
