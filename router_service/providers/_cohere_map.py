"""Cohere Chat API v2 ⇄ OpenAI chat dialect.

Followed:
- Chat v2 request and response (messages with system/user/assistant/tool roles, tools in the
  OpenAI function shape, `p`, `stop_sequences`, finish_reason COMPLETE / STOP_SEQUENCE /
  MAX_TOKENS / TOOL_CALL / ERROR, usage.tokens and usage.billed_units):
  https://docs.cohere.com/reference/chat
- Stream events (message-start, content-start/delta/end, tool-plan-delta, tool-call-start/
  delta/end, citation-start/end, message-end with finish_reason and usage):
  https://docs.cohere.com/v2/docs/streaming and https://docs.cohere.com/docs/tool-use-streaming
- Images as `image_url` content parts: https://docs.cohere.com/docs/image-inputs
- Reasoning (`thinking`): a reasoning model's thoughts come as `{"type": "thinking",
  "thinking"}` content items, streamed as content-delta events whose content holds `thinking`
  instead of `text` (https://docs.cohere.com/v2/docs/reasoning): the answer's
  `reasoning_content`, as Claude's thinking and Gemini's thoughts are.
- Content parts are text and images only: Cohere takes no audio, and documents only as text, in
  the request's own `documents` field (https://docs.cohere.com/docs/retrieval-augmented-generation-rag;
  passed through when a caller sends it). An OpenAI `file` or `input_audio` part is
  UNSUPPORTED_INPUT: the group's next deployment may take it. So is any part but text in a
  tool result: Chat v2's tool message content is text and `document` items only (no image),
  so an image a tool returned cannot reach the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _mapping as M
from router_service.providers._in_answer import in_answer
from router_service.providers._legacy_functions import no_forced_legacy_call
from router_service.providers._one_choice import one_choice_only
from router_service.providers._reasoning_budgets import cohere_thinking

JsonObject = dict[str, Any]

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
_FAILED = frozenset({"ERROR", "TIMEOUT", "ERROR_LIMIT"})
CHAT_API = "Cohere's Chat API"
_PARAMS = {
    "temperature": "temperature",
    "top_p": "p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# https://docs.cohere.com/reference/chat: p runs from 0.01 to 0.99 and the penalties from 0 to 1,
# where OpenAI's top_p reaches 1 and its penalties run from -2 to 2: out-of-range values are
# brought to the nearest one Cohere takes rather than refused.
_RANGES = {"p": (0.01, 0.99), "presence_penalty": (0.0, 1.0), "frequency_penalty": (0.0, 1.0)}
_CHOICES = {"required": "REQUIRED", "none": "NONE"}


def request_body(body: Mapping[str, Any], model: str, *, stream: bool) -> JsonObject:
    no_forced_legacy_call(body)
    one_choice_only(body, CHAT_API)
    out: JsonObject = {
        **M.passthrough(body),
        "model": model,
        "messages": [
            _message(m, f"messages[{i}]") for i, m in enumerate(body.get("messages") or [])
        ],
    }
    # A null (the SDK's None) is unset, as OpenAI reads it.
    out.update({native: body[key] for key, native in _PARAMS.items() if body.get(key) is not None})
    if "top_k" in out:  # the common extension to OpenAI's sampling; Cohere calls it k
        out["k"] = out.pop("top_k")
    for native, (low, high) in _RANGES.items():
        if isinstance(out.get(native), int | float):
            out[native] = min(max(float(out[native]), low), high)
    limit = M.max_tokens(body)
    if limit is not None:
        out["max_tokens"] = limit
    stops = M.stop_list(body)
    if stops:
        out["stop_sequences"] = stops
    functions = M.function_tools(body)
    if functions:
        out["tools"] = [{"type": "function", "function": f} for f in functions]
        choice = body.get("tool_choice")
        allowed = M.allowed_tools(choice)  # its tools alone are declared (`function_tools`)
        choice = choice if allowed is None else allowed[0]
        if isinstance(choice, dict):  # a named function: Cohere can only require some tool
            out["tool_choice"] = "REQUIRED"
        elif isinstance(choice, str) and choice in _CHOICES:
            out["tool_choice"] = _CHOICES[choice]
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") != "text":
        schema = (response_format.get("json_schema") or {}).get("schema")
        out["response_format"] = {
            "type": "json_object",
            **({"json_schema": schema} if schema else {}),
        }
    cohere_thinking(out, body)
    if stream:
        out["stream"] = True
    return out


def _message(message: Any, path: str) -> JsonObject:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": M.text_of(content)}
    if role == "tool":
        text = _tool_text(content, path)  # Cohere has no flag for a failed one: its text says it
        return {
            "role": "tool",
            "tool_call_id": str(message.get("tool_call_id", "")),
            "content": M.said_failed(text) if M.failed_result(message) else text,
        }
    if role == "assistant":
        out: JsonObject = {"role": "assistant"}
        text = M.text_of(content)
        if text:
            out["content"] = text
        if message.get("tool_calls"):
            out["tool_calls"] = [
                {"id": c.get("id", ""), "type": "function", "function": c.get("function") or {}}
                for c in message["tool_calls"]
            ]
        return out
    return {"role": "user", "content": _user_content(content, path)}


def _tool_text(content: Any, path: str) -> str:
    """A tool result's text. Cohere's tool content is text and documents: an image (or any
    other media) in it would be dropped unseen, so the result is refused for another deployment
    of the group (a 400 when none takes it) rather than answered without it."""
    for j, part in enumerate(M.parts_of(content)):
        if part.get("type") != "text":
            raise M.unsupported(
                f"cohere takes a tool result's text only, not {part.get('type')!r} parts "
                "(its tool messages carry text and documents, no images)",
                f"{path}.content[{j}]",
            )
    return M.text_of(content)


def _user_content(content: Any, path: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[JsonObject] = []
    for j, part in enumerate(M.parts_of(content)):
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            parts.append({"type": "image_url", "image_url": {"url": M.image_url(part)}})
        else:
            raise M.unsupported(
                f"cohere takes text and image_url content parts, not {kind!r} (no audio; "
                "documents only as text, in its own `documents` field)",
                f"{path}.content[{j}]",
            )
    return parts


# --- response -----------------------------------------------------------------------------------


def usage(raw: Mapping[str, Any]) -> JsonObject:
    counts = raw.get("tokens") or raw.get("billed_units") or {}
    return M.usage(int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0))


def finish_reason(raw: Any, error: Any = None) -> str | None:
    """OpenAI's finish reason; a failed generation is raised as the upstream's failure, that one
    answer's unless it says the server is overloaded (`in_answer`)."""
    if not raw:
        return None
    if raw in _FAILED:
        detail = f": {error}" if error else ""
        raise in_answer(
            UpstreamFailure(
                Outcome.UPSTREAM_ERROR,
                f"cohere ended the generation with {raw}{detail}",
                upstream_error={"message": str(error or raw), "finish_reason": raw},
            )
        )
    return _FINISH.get(str(raw), "stop")


def completion(data: Mapping[str, Any], model: str, created: int) -> JsonObject:
    message = data.get("message") or {}
    content = [c for c in message.get("content") or [] if isinstance(c, dict)]
    text = "".join(str(c.get("text", "")) for c in content if c.get("type") == "text")
    thinking = "".join(str(c.get("thinking", "")) for c in content if c.get("type") == "thinking")
    calls = [
        M.tool_call(
            str(c.get("id", "")),
            str((c.get("function") or {}).get("name", "")),
            str((c.get("function") or {}).get("arguments") or "{}"),
        )
        for c in message.get("tool_calls") or []
    ]
    answer = M.assistant_message(text, calls)
    if thinking:
        answer["reasoning_content"] = thinking
    raw_usage = data.get("usage")
    return M.completion(
        str(data.get("id", "")),
        created,
        model,
        answer,
        finish_reason(data.get("finish_reason")) or "stop",
        usage(raw_usage) if isinstance(raw_usage, dict) else None,
    )


class StreamMapper:
    """Chat v2 stream events → OpenAI chunks."""

    def __init__(self, model: str, created: int) -> None:
        self.id = ""
        self.model = model
        self.created = created
        self._tools: dict[int, int] = {}  # event index → OpenAI tool call index

    def _chunk(self, delta: JsonObject | None, **kwargs: Any) -> JsonObject:
        return M.chunk(self.id, self.created, self.model, delta, **kwargs)

    def feed(self, event: Mapping[str, Any]) -> list[JsonObject]:
        kind = event.get("type")
        delta = event.get("delta") or {}
        message = delta.get("message") or {}
        if kind == "message-start":
            self.id = str(event.get("id") or self.id)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind in ("content-start", "content-delta"):
            return self._content(message.get("content") or {})
        if kind in ("tool-call-start", "tool-call-delta"):
            return self._tool_call(int(event.get("index", 0)), message.get("tool_calls") or {})
        if kind == "message-end":
            return self._end(delta)
        return []  # content-end, tool-plan-delta, tool-call-end, citation-*

    def _content(self, content: Mapping[str, Any]) -> list[JsonObject]:
        """A text delta, or a reasoning model's thinking (its `reasoning_content`)."""
        text = str(content.get("text") or "")
        if text:
            return [self._chunk({"content": text})]
        thinking = str(content.get("thinking") or "")
        return [self._chunk({"reasoning_content": thinking})] if thinking else []

    def _tool_call(self, index: int, call: Mapping[str, Any]) -> list[JsonObject]:
        function = call.get("function") or {}
        if index not in self._tools:
            position = self._tools[index] = len(self._tools)
            name, arguments = str(function.get("name", "")), str(function.get("arguments") or "")
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            M.tool_call(str(call.get("id", "")), name, arguments, position)
                        ]
                    }
                )
            ]
        partial = {
            "index": self._tools[index],
            "function": {"arguments": str(function.get("arguments") or "")},
        }
        return [self._chunk({"tool_calls": [partial]})]

    def _end(self, delta: Mapping[str, Any]) -> list[JsonObject]:
        reason = finish_reason(delta.get("finish_reason"), delta.get("error"))
        chunks = [self._chunk({}, finish_reason=reason)] if reason else []
        raw_usage = delta.get("usage")
        if isinstance(raw_usage, dict):
            chunks.append(self._chunk(None, usage_obj=usage(raw_usage)))
        return chunks
