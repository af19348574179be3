"""Amazon Bedrock Converse routes: `POST /model/{modelId}/converse` (JSON) and
`/model/{modelId}/converse-stream` (an AWS event stream), and the control plane's
`GET /foundation-models`.

Shapes from https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
API_runtime_ConverseStream.html and API_ListFoundationModels.html: a stream is messageStart,
a content block (text deltas, or a toolUse start with its input in deltas), contentBlockStop,
messageStop with the stop reason, metadata with usage. Like the real API, the fake refuses a
body Converse would not take (`converse_problem`): blocks of unknown kinds, image and document
formats it does not know, a document name with characters it refuses, a toolUseId of other
characters than `[a-zA-Z0-9_-]` or longer than 64, tool blocks without a toolConfig, turns that
do not alternate, fields it does not define, a text block of whitespace alone in a turn (not in
a tool result: Converse takes those), two documents of one name in a request (a tool
result's too, in any case). A Mistral model (`mistral.mistral-large-…`,
`us.mistral.pixtral-large-…`) refuses a toolUseId shorter than Mistral's 9 characters, as seen
of Bedrock ("The model returned the following errors: Tool call id was a but must be a-z, A-Z,
0-9, with a length of 9."; its own longer `tooluse_…` ids it takes).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from . import _responses as R
from ._anthropic import output_format_problem, thinking_problem
from ._bedrock_dialect import BEDROCK, auth_problem, stream_event
from ._content import MISTRAL_MODEL
from ._faults import Call, run_stream, send_answer, send_error, send_json
from ._native import RequestView, chat_answer, words
from ._openai import handle

JsonObject = dict[str, Any]
TOOL_USE_ID = "tooluse_fake_1"
_FIELDS = frozenset(
    {
        "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
        "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
        "requestMetadata", "performanceConfig", "serviceTier", "outputConfig",
    }
)  # fmt: skip
_INFERENCE = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_BLOCKS = frozenset(
    {"text", "image", "document", "video", "toolUse", "toolResult", "cachePoint",
     "reasoningContent", "guardContent"}
)  # fmt: skip
_RESULT_BLOCKS = frozenset({"text", "json", "image", "document", "video"})
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
_DOCUMENT_FORMATS = frozenset({"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"})
_DOCUMENT_NAME = re.compile(r"[A-Za-z0-9\-()\[\]]+(?: [A-Za-z0-9\-()\[\]]+)*")
# A toolUse's and a toolResult's `toolUseId`: ToolUseBlock, ToolResultBlock (1 to 64 of these).
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _texts(blocks: Any) -> list[str]:
    items = blocks if isinstance(blocks, list) else []
    return [str(b["text"]) for b in items if isinstance(b, dict) and "text" in b]


def _view(body: JsonObject) -> RequestView:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user = [m for m in messages if m.get("role") == "user" and _texts(m.get("content"))]
    last = messages[-1].get("content") if messages else None
    answered = isinstance(last, list) and any(
        isinstance(b, dict) and "toolResult" in b for b in last
    )
    tools = (body.get("toolConfig") or {}).get("tools") or []
    specs = [t["toolSpec"] for t in tools if isinstance(t, dict) and "toolSpec" in t]
    first = str(specs[0].get("name")) if specs else None
    system = " ".join(_texts(body.get("system")))
    all_text = " ".join(t for m in messages for t in _texts(m.get("content")))
    last_user = " ".join(_texts(user[-1].get("content"))) if user else ""
    return RequestView(last_user, words(system, all_text), first, answered)


def _block_problem(block: Any, allowed: frozenset[str], tools: bool) -> str | None:
    kinds = [k for k in block if k in allowed] if isinstance(block, dict) else []
    if not isinstance(block, dict) or len(kinds) != 1 or len(block) != 1:
        return f"a content block must be exactly one of {sorted(allowed)}"
    kind, value = kinds[0], block[kinds[0]]
    if kind == "image" and (
        value.get("format") not in _IMAGE_FORMATS or not (value.get("source") or {})
    ):
        return "image: format must be png, jpeg, gif or webp, with a source"
    if kind == "document":
        name = str(value.get("name") or "")
        if value.get("format") not in _DOCUMENT_FORMATS or not value.get("source"):
            return f"document: format must be one of {sorted(_DOCUMENT_FORMATS)}, with a source"
        if not _DOCUMENT_NAME.fullmatch(name):
            return (
                "document: the name may hold only letters, digits, single spaces, hyphens, "
                "parentheses and square brackets"
            )
    if kind == "cachePoint" and (
        value.get("type") != "default" or value.get("ttl", "5m") not in ("5m", "1h")
    ):
        return "cachePoint: type must be default, and a ttl 5m or 1h"
    if kind in ("toolUse", "toolResult") and not tools:
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    if kind in ("toolUse", "toolResult") and not _TOOL_USE_ID.fullmatch(
        str(value.get("toolUseId", ""))
    ):
        return f"{kind}.toolUseId: must match pattern [a-zA-Z0-9_-]+ (length 1 to 64)"
    if kind == "toolResult":
        for inner in value.get("content") or []:
            problem = _block_problem(inner, _RESULT_BLOCKS, tools)
            if problem is not None:
                return f"toolResult.{problem}"
    return None


def _short_tool_id(messages: list[Any]) -> str | None:
    """A toolUseId shorter than a Mistral model takes (9 characters), or None."""
    for message in messages:
        for block in (message.get("content") or []) if isinstance(message, dict) else ():
            for kind in ("toolUse", "toolResult"):
                inner = block.get(kind) if isinstance(block, dict) else None
                call_id = inner.get("toolUseId") if isinstance(inner, dict) else None
                if isinstance(call_id, str) and len(call_id) < 9:
                    return call_id
    return None


def converse_problem(body: JsonObject, model: str = "") -> str | None:
    """Why Converse would refuse the body (a ValidationException's message), or None: Claude's
    `thinking` (in additionalModelRequestFields) is held to the Messages API's rules."""
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        return f"extraneous key [{unknown[0]}] is not permitted"
    if "outputConfig" in body and not _json_schema_format(body["outputConfig"]):
        return "outputConfig.textFormat: a json_schema, its structure.jsonSchema.schema JSON text"
    if "outputConfig" in body and "claude" in model and output_format_problem(model):
        return output_format_problem(model)
    inference = body.get("inferenceConfig") or {}
    extra = set(inference) - _INFERENCE
    if extra:
        return f"extraneous key [inferenceConfig.{sorted(extra)[0]}] is not permitted"
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if "claude" in model and isinstance(inference.get("maxTokens"), int):
        problem = thinking_problem(thinking, inference["maxTokens"], model)
        if problem is not None:
            return problem
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message."
    tools = bool((body.get("toolConfig") or {}).get("tools"))
    if MISTRAL_MODEL.search(model):
        short = _short_tool_id(messages)
        if short is not None:
            return (
                f"The model returned the following errors: Tool call id was {short} but must "
                "be a-z, A-Z, 0-9, with a length of 9."
            )
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            return "A conversation must alternate between user and assistant roles."
        for j, block in enumerate(message.get("content") or []):
            problem = _block_problem(block, _BLOCKS, tools)
            if problem is not None:
                return f"messages.{i}.content: {problem}"
            if isinstance(block.get("text"), str) and not block["text"].strip():
                return (
                    f"The text field in the ContentBlock object at messages.{i}.content.{j} is "
                    "blank. Add text to the text field, and try again."
                )
    return _repeated_document_name(messages)


def _json_schema_format(config: Any) -> bool:
    """Converse's `outputConfig`: `textFormat` of type json_schema, its schema a JSON string."""
    fmt = config.get("textFormat") if isinstance(config, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return False
    structure = fmt.get("structure")
    definition = structure.get("jsonSchema") if isinstance(structure, dict) else None
    schema = definition.get("schema") if isinstance(definition, dict) else None
    try:
        return isinstance(schema, str) and isinstance(orjson.loads(schema), dict)
    except orjson.JSONDecodeError:
        return False


def _repeated_document_name(messages: list[Any]) -> str | None:
    """Converse's refusal of two documents of one name in a request (a tool result's too)."""
    seen: set[str] = set()
    for message in messages:
        for block in message.get("content") or []:
            inner = (block.get("toolResult") or {}).get("content") or []
            for item in [block, *inner]:
                name = (item.get("document") or {}).get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name.lower() in seen:
                    return (
                        "Messages can't contain duplicate document names. Rename the document "
                        "and retry your request."
                    )
                if isinstance(name, str):
                    seen.add(name.lower())
    return None


def _usage(answer: R.ChatAnswer) -> JsonObject:
    prompt, completion = answer.prompt_tokens, answer.completion_tokens
    usage: JsonObject = {
        "inputTokens": prompt,
        "outputTokens": completion,
        "totalTokens": prompt + completion,
    }
    cached, written, hour = (
        answer.cached_tokens,
        answer.cache_write_tokens,
        answer.cache_write_1h_tokens,
    )
    if cached or written:
        usage |= {"cacheReadInputTokens": cached, "cacheWriteInputTokens": written}
        usage["totalTokens"] += cached + written
    if written:  # by TTL, the hour's first, as Bedrock sorts them
        ttls = [("1h", hour), ("5m", written - hour)]
        usage["cacheDetails"] = [{"ttl": t, "inputTokens": n} for t, n in ttls if n]
    return usage


def _stop_reason(answer: R.ChatAnswer, given: str | None) -> str:
    """The scenario's `finish_reason`, Converse's own word (`malformed_model_output`…), else
    the answer's."""
    return given or ("tool_use" if answer.tool_name is not None else "end_turn")


def _response(answer: R.ChatAnswer, stop: str | None = None) -> JsonObject:
    if answer.tool_name is not None:
        arguments = orjson.loads(answer.tool_arguments)
        use = {"toolUseId": TOOL_USE_ID, "name": answer.tool_name, "input": arguments}
        content: list[JsonObject] = [{"toolUse": use}]
    else:
        content = [{"text": answer.text}]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop_reason(answer, stop),
        "usage": _usage(answer),
        "metrics": {"latencyMs": 1},
    }


def _block_events(answer: R.ChatAnswer) -> list[bytes]:
    if answer.tool_name is None:
        deltas: list[JsonObject] = [{"text": piece} for piece in answer.pieces]
        start: list[bytes] = []
    else:
        half = len(answer.tool_arguments) // 2
        halves = (answer.tool_arguments[:half], answer.tool_arguments[half:])
        deltas = [{"toolUse": {"input": part}} for part in halves]
        use = {"toolUse": {"toolUseId": TOOL_USE_ID, "name": answer.tool_name}}
        start = [stream_event("contentBlockStart", {"start": use, "contentBlockIndex": 0})]
    return [
        *start,
        *(stream_event("contentBlockDelta", {"delta": d, "contentBlockIndex": 0}) for d in deltas),
        stream_event("contentBlockStop", {"contentBlockIndex": 0}),
    ]


def stream_events(answer: R.ChatAnswer, stop: str | None = None) -> tuple[list[bytes], int]:
    """All messages of a healthy stream, and how many precede messageStop (the stop reason)."""
    events = [stream_event("messageStart", {"role": "assistant"}), *_block_events(answer)]
    content_count = len(events)
    events += [
        stream_event("messageStop", {"stopReason": _stop_reason(answer, stop)}),
        stream_event("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 1}}),
    ]
    return events, content_count


async def _converse(call: Call) -> web.StreamResponse:
    refused = await auth_problem(call.request, call.state.aws_credentials)
    if refused is not None:
        status, message = refused
        return await send_json(call, status, BEDROCK.error_body(status, message), "auth_refused")
    problem = converse_problem(call.body, call.record.model)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    answer = chat_answer(call, _view(call.body), f"fake-{call.record.seq}")
    stop = call.scenario.finish_reason
    if not call.record.stream:
        return await send_answer(call, _response(answer, stop))
    events, content_count = stream_events(answer, stop)
    return await run_stream(call, events, content_count)


async def _models(call: Call) -> web.StreamResponse:
    refused = await auth_problem(call.request, call.state.aws_credentials)
    if refused is not None:
        status, message = refused
        return await send_json(call, status, BEDROCK.error_body(status, message), "auth_refused")
    return await send_answer(call, BEDROCK.model_list(call.state.models))


async def converse(request: web.Request) -> web.StreamResponse:
    model = request.match_info["model_id"]
    return await handle(request, _converse, dialect=BEDROCK, model=model, stream=False)


async def converse_stream(request: web.Request) -> web.StreamResponse:
    model = request.match_info["model_id"]
    return await handle(request, _converse, dialect=BEDROCK, model=model, stream=True)


async def foundation_models(request: web.Request) -> web.StreamResponse:
    return await handle(request, _models, dialect=BEDROCK)


def add_routes(app: web.Application) -> None:
    # A model id may be an ARN: `/` inside it arrives encoded and is matched decoded.
    app.router.add_post("/model/{model_id:.+}/converse", converse)
    app.router.add_post("/model/{model_id:.+}/converse-stream", converse_stream)
    app.router.add_get("/foundation-models", foundation_models)
