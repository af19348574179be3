"""Pure helpers shared by the native-format mappings (Gemini, Anthropic, Cohere).

Each of those adapters maps the OpenAI-dialect body that the codec writes from `ChatParams`
(`chat_params_to_openai`) into its provider's body, and its provider's answers back into OpenAI
`chat.completion` / `chat.completion.chunk` objects that the codec parses. Working on the OpenAI
dialect on both sides keeps one set of protobuf rules (the codec's) and makes every mapping a
plain dict → dict function.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from clients.codec import unwritable
from clients.codec.anthropic import TOOL_ERROR_KEY
from clients.codec.gemini import GEMINI_ONLY
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._reasoning_object import GOOGLE_EXTRA, OPENROUTER_KEYS

JsonObject = dict[str, Any]

# Request keys of OpenAI's chat API. Any other top-level key is a provider's own field that the
# caller sent on purpose (`top_k`, `safetySettings`, `thinking`…): it passes through unchanged.
OPENAI_CHAT_KEYS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "tools", "tool_choice", "temperature",
        "top_p", "n", "stop", "max_tokens", "max_completion_tokens", "presence_penalty",
        "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed",
        "response_format", "parallel_tool_calls", "functions", "function_call", "service_tier",
        "store", "metadata", "reasoning_effort", "modalities", "audio", "prediction",
        "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
        "verbosity", "web_search_options",
    }
)  # fmt: skip


# Not passed through: OpenAI's keys, OpenRouter's reasoning keys, Google's `extra_body` (the
# reasoning knob's; only Google's OpenAI-compatible endpoint takes `extra_body`) and the Gemini
# entrance's fields for a Gemini deployment (its provider puts them where Gemini reads them).
_NOT_PASSED = OPENAI_CHAT_KEYS | frozenset(OPENROUTER_KEYS) | {GOOGLE_EXTRA, GEMINI_ONLY}


# How deep the JSON of an upstream request may nest: orjson writes no deeper.
WRITABLE_DEPTH = 254


def passthrough(body: Mapping[str, Any]) -> JsonObject:
    """The caller's provider-specific top-level keys; a null one (the SDK's None) is unset."""
    return {k: v for k, v in body.items() if k not in _NOT_PASSED and v is not None}


def caller_error(message: str, param: str | None = None) -> UpstreamFailure:
    """A malformed request (no provider could take it): the caller's to fix, returned as a 400."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return UpstreamFailure(Outcome.BAD_REQUEST, message, upstream_status=400, upstream_error=error)


def unsupported(message: str, param: str | None = None) -> UpstreamFailure:
    """A valid request this provider cannot express (a content kind its API does not take):
    another deployment of the group may; the caller gets the 400 only when none can. Nothing
    reached the provider, so there is no upstream status."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return UpstreamFailure(Outcome.UNSUPPORTED_INPUT, message, upstream_error=error)


def no_json_mode(api: str) -> UpstreamFailure:
    """JSON mode (`response_format` `json_object`) at `api`, which has no word for it (Claude's
    Messages API, Bedrock's Converse): their structured outputs take a `json_schema` whose
    objects must each be closed (`additionalProperties: false`), so no schema lets any JSON
    object through. Answering unconstrained text instead would break a caller that parses it:
    UNSUPPORTED_INPUT (the group's next deployment may take it; a 400 when none can)."""
    return unsupported(
        f"{api} has no JSON mode: `response_format` `json_object` cannot be sent (its "
        "structured outputs take a `json_schema` whose objects name their properties); send a "
        "`json_schema` response_format instead.",
        "response_format",
    )


def json_body(value: Any) -> bytes:
    """`value` (an upstream request's body or a value in it) as JSON. The caller's own JSON (a
    schema, an extra field, a `*_json` field of a gRPC call) is read up to 1024 levels deep but
    written to at most `WRITABLE_DEPTH`: deeper, no request can be written for this deployment
    (another kind's body may nest it less: a tool call's arguments are a string in OpenAI's,
    an object in Anthropic's), so it cannot take the request."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # "Recursion limit reached" (or a key not a string)
        raise unsupported(
            f"The request cannot be sent upstream: {unwritable(exc)} (a value in it may nest at "
            f"most {WRITABLE_DEPTH} levels deep in the upstream's body)."
        ) from exc


def text_of(content: Any) -> str:
    """The text of an OpenAI message `content`: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def has_text(part: Mapping[str, Any]) -> bool:
    """Whether a text part says something: Claude (Anthropic's API, Vertex AI) and Bedrock's
    Converse refuse a whole request for one text block of whitespace alone ("text content
    blocks must contain non-whitespace text"), which OpenAI takes; it is left out for them."""
    text = part.get("text")
    return isinstance(text, str) and not text.isspace() and text != ""


def blank_text(content: Any, turns: list[JsonObject], later: list[Any]) -> list[JsonObject]:
    """The text block of a user turn of whitespace alone (`has_text`'s) when leaving it out
    would end the conversation on the assistant's turn (the last of `turns`; no turn but a
    system one `later`), which Claude reads as the start of its answer: sent, the upstream says
    why it refuses it. Anywhere else (an earlier turn another deployment answered, one after a
    tool's result) it is left out, as a part of whitespace alone is: sent, every later turn of
    the conversation were refused."""
    text = text_of(content)
    ends_on_assistant = not turns or turns[-1]["role"] == "assistant"
    last = not any(
        isinstance(m, dict) and m.get("role") not in ("system", "developer") for m in later
    )
    return [{"text": text}] if text and ends_on_assistant and last else []


def parts_of(content: Any) -> list[JsonObject]:
    """An OpenAI `content` as a list of parts (a string is one text part)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [p for p in content if isinstance(p, dict)]
    return []


def append_turn(turns: list[JsonObject], role: str, key: str, items: list[JsonObject]) -> None:
    """Add `items` as a turn of `role`, merged into the last turn when it has the same role:
    Anthropic and Gemini want user and assistant turns to alternate, where OpenAI allows two
    in a row (e.g. a tool result followed by a user message)."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def stop_list(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def max_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) else None


def image_url(part: Mapping[str, Any]) -> str:
    image = part.get("image_url")
    return str(image.get("url", "")) if isinstance(image, dict) else ""


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header.removesuffix(";base64") or "application/octet-stream", data


def load_arguments(arguments: str, param: str) -> JsonObject:
    """A tool call's JSON arguments as the object native formats carry."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise caller_error(f"tool call arguments are not JSON: {exc}", param) from exc
    if not isinstance(value, dict):
        raise caller_error("tool call arguments must be a JSON object", param)
    return value


# What Anthropic and Bedrock's Converse take as a tool call's id (a tool_use's `id` and a
# tool_result's `tool_use_id`; a toolUse's and a toolResult's `toolUseId`: 64 at most there).
_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NOT_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")
_TOOL_ID_KEPT = 64 - 9  # of an id mapped: what goes before `_` and its digest (8 hex digits)
# What a failed tool result's text says first where the provider has no flag for it.
_TOOL_ERROR = "Error:"


def tool_id(call_id: str) -> str:
    """A tool call's id as Anthropic and Bedrock take it (letters, digits, `_`, `-`; 64 at
    most), which another provider's ids need not keep (Kimi's `functions.get_weather:0`): as
    it is when it does, else its other characters made `_`, cut to fit, and a digest of it
    added, so that a call and its result keep one id and two ids stay two."""
    if _TOOL_ID.fullmatch(call_id):
        return call_id
    digest = hashlib.blake2b(call_id.encode(), digest_size=4).hexdigest()
    return f"{_NOT_TOOL_ID.sub('_', call_id)[:_TOOL_ID_KEPT]}_{digest}"


def failed_result(message: Mapping[str, Any]) -> bool:
    """Whether a `tool` message is a failed result (the Messages API entrance's flag, a
    tool_result's `is_error`)."""
    return message.get(TOOL_ERROR_KEY) is True


def said_failed(content: Any) -> Any:
    """A failed result's content said to be one in its text (`Error: …`), which every model
    reads: for a provider without a word of its own for it."""
    if isinstance(content, list):
        return [{"type": "text", "text": _TOOL_ERROR}, *content]
    text = content if isinstance(content, str) else ""
    return f"{_TOOL_ERROR} {text}" if text else _TOOL_ERROR


def dump_arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def tool_names_by_id(messages: Iterable[Any]) -> dict[str, str]:
    """Tool call id → function name, from the assistant messages of a conversation (native
    formats that name a tool result by function need it; OpenAI's names it by call id)."""
    names: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and call.get("id"):
                names[str(call["id"])] = str(function.get("name", ""))
    return names


def function_tools(body: Mapping[str, Any]) -> list[JsonObject]:
    """The `function` objects of the request's tools (those its `allowed_tools` choice allows)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    allowed = allowed_tools(body.get("tool_choice"))
    return [
        t["function"]
        for t in tools
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and (allowed is None or t["function"].get("name") in allowed[1])
    ]


def allowed_tools(choice: Any) -> tuple[str, frozenset[str]] | None:
    """(mode, function names) of OpenAI's `allowed_tools` tool choice (the tools a turn may
    call of those declared: `auto` or `required`), which native formats say by declaring those
    alone; None for any other choice."""
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return None
    allowed = choice.get("allowed_tools")
    allowed = allowed if isinstance(allowed, dict) else {}
    tools = allowed.get("tools")
    tools = tools if isinstance(tools, list) else []
    functions = [t.get("function") for t in tools if isinstance(t, dict)]
    names = frozenset(str(f.get("name")) for f in functions if isinstance(f, dict))
    return str(allowed.get("mode") or "auto"), names


def without_idle_tool_fields(body: JsonObject) -> None:
    """`body` without `tool_choice`, `parallel_tool_calls` and an empty `tools` when it has no
    tools, nor an empty legacy `functions` and its `function_call`, in place: OpenAI's chat API
    refuses each of them without tools ("Invalid 'functions': empty array"; as the native kinds'
    mappings leave them out), and there is nothing for them to choose. A choice that forces a
    call never gets here without tools (the servicer's check refuses it)."""
    if not body.get("functions"):
        body.pop("functions", None)
        body.pop("function_call", None)
    if body.get("tools"):
        return
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        body.pop(key, None)


def usage(
    prompt: int,
    completion: int,
    *,
    total: int | None = None,
    cached: int | None = None,
    cache_write: int | None = None,
    cache_write_1h: int | None = None,
    reasoning: int | None = None,
) -> JsonObject:
    """OpenAI's usage object; `prompt` counts every input token, the cache's reads (`cached`)
    and writes (`cache_write`, of which `cache_write_1h` kept an hour) included."""
    out: JsonObject = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total if total is not None else prompt + completion,
    }
    details = {
        key: count
        for key, count in (
            ("cached_tokens", cached),
            ("cache_write_tokens", cache_write),
            ("cache_write_1h_tokens", cache_write_1h),
        )
        if count
    }
    if details:
        out["prompt_tokens_details"] = details
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def completion(
    completion_id: str,
    created: int,
    model: str,
    message: JsonObject,
    finish_reason: str | None,
    usage_obj: JsonObject | None,
) -> JsonObject:
    out: JsonObject = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage_obj is not None:
        out["usage"] = usage_obj
    return out


def chunk(
    chunk_id: str,
    created: int,
    model: str,
    delta: JsonObject | None,
    finish_reason: str | None = None,
    usage_obj: JsonObject | None = None,
) -> JsonObject:
    """A `chat.completion.chunk`; `delta=None` makes the choice-less usage chunk."""
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    )
    out: JsonObject = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage_obj is not None:
        out["usage"] = usage_obj
    return out


def assistant_message(text: str, tool_calls: Sequence[JsonObject]) -> JsonObject:
    message: JsonObject = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return message


def tool_call(call_id: str, name: str, arguments: str, index: int | None = None) -> JsonObject:
    out: JsonObject = {} if index is None else {"index": index}
    out.update(
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    )
    return out


def model_ids(data: Mapping[str, Any]) -> list[str]:
    """The ids of an OpenAI-shaped model list (`{"data": [{"id": ...}]}`)."""
    items = data.get("data")
    if not isinstance(items, list):
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
    return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]
