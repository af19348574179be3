"""Amazon Bedrock Converse API ⇄ OpenAI chat dialect: requests, responses and stream events.

Followed:
- Converse request and response (messages of user/assistant turns with content blocks, `system`
  blocks, `inferenceConfig` maxTokens/temperature/topP/stopSequences, `toolConfig` with
  `toolSpec` {name, description, inputSchema.json} and toolChoice auto/any/tool, `output.message`,
  `stopReason`, `usage` with inputTokens/outputTokens/totalTokens/cacheRead/WriteInputTokens):
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
- Content blocks (text, image {format png|jpeg|gif|webp, source.bytes}, document {format pdf|
  csv|doc|docx|xls|xlsx|html|txt|md, name, source.bytes}, toolUse, toolResult, cachePoint,
  reasoningContent): https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html
  and DocumentBlock (a name of letters, digits, single spaces, hyphens, parentheses and square
  brackets): https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html
- Stream events (messageStart, contentBlockStart with a toolUse start, contentBlockDelta with
  text / toolUse.input / reasoningContent, contentBlockStop, messageStop with stopReason,
  metadata with usage): https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
- Tool use and its rule that a conversation holding toolUse / toolResult blocks needs a
  toolConfig: https://docs.aws.amazon.com/bedrock/latest/userguide/tool-use-inference-call.html

Reasoning (Claude's extended thinking through `additionalModelRequestFields.thinking`) comes as
`reasoning_content` and, signed, as the message's `thinking_blocks` (Anthropic's shape, as the
`anthropic` kind gives them); handed back, they lead the assistant turn as reasoningContent.

Images and documents travel as base64 `bytes` (a data URL) or as an S3 location (an `s3://`
URL); Converse fetches no http(s) links and takes no audio, so those are UNSUPPORTED_INPUT and
the group's next deployment may take them. Request fields OpenAI does not define go where
Converse wants them: its own top-level fields (`guardrailConfig`, `performanceConfig`…) as
they are, any other (`top_k`, Claude's `thinking`…) into `additionalModelRequestFields`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from router_service.providers import _bedrock_blocks as B
from router_service.providers import _json_tool as J
from router_service.providers import _mapping as M
from router_service.providers._bedrock_stops import filtered, finish_reason
from router_service.providers._legacy_functions import no_forced_legacy_call
from router_service.providers._one_choice import one_choice_only
from router_service.providers._reasoning_claude import (
    for_bedrock,
    is_bedrock_claude,
    takes_output_format,
)

JsonObject = dict[str, Any]

# Converse's own top-level request fields: a caller's passes through as it is.
_CONVERSE_FIELDS = frozenset(
    {
        "guardrailConfig", "additionalModelRequestFields", "promptVariables",
        "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig",
        "serviceTier", "outputConfig",
    }
)  # fmt: skip

# --- request ------------------------------------------------------------------------------------


def request_body(body: Mapping[str, Any], model: str = "") -> JsonObject:
    """The Converse body of an OpenAI chat body (the URL's model id says its reasoning knob)."""
    asked = body
    no_forced_legacy_call(body)
    one_choice_only(body, B.CONVERSE)
    if is_bedrock_claude(model):
        body = J.as_forced_tool(body, model, B.CONVERSE)
    system, messages = _messages(body.get("messages") or [])
    out: JsonObject = {"messages": messages}
    if system:
        out["system"] = system
    inference = _inference_config(body)
    if inference:
        out["inferenceConfig"] = inference
    tools = _tool_config(body, messages)
    if tools:
        out["toolConfig"] = tools
    extra: JsonObject = {}
    for key, value in M.passthrough(body).items():
        if key in _CONVERSE_FIELDS:
            out[key] = value
        else:
            extra[key] = value
    if extra:
        given = out.get("additionalModelRequestFields")
        out["additionalModelRequestFields"] = {
            **extra,
            **(given if isinstance(given, dict) else {}),
        }
    if is_bedrock_claude(model):
        B.one_call_at_a_time(out, body)
    if "response_format" in body and (not is_bedrock_claude(model) or takes_output_format(model)):
        B.with_output_config(out, body)  # none to a Claude older than 4.5: it refuses one
    for_bedrock(out, body, model)
    if body is not asked:
        J.refuse_thinking(
            (out.get("additionalModelRequestFields") or {}).get("thinking"), B.CONVERSE
        )
    return out


def _inference_config(body: Mapping[str, Any]) -> JsonObject:
    """maxTokens, temperature, topP and stopSequences. The models behind Converse take a
    temperature up to 1 (OpenAI's reaches 2); and as with Anthropic's API, a Claude 4.5 refuses
    temperature and top_p together, so temperature (the one OpenAI callers set) wins."""
    out: JsonObject = {}
    limit = M.max_tokens(body)
    if limit is not None:
        out["maxTokens"] = limit
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    elif isinstance(body.get("top_p"), int | float):
        out["topP"] = body["top_p"]
    stops = M.stop_list(body)
    if stops:
        out["stopSequences"] = stops
    return out


def _tool_config(body: Mapping[str, Any], messages: list[JsonObject]) -> JsonObject | None:
    """Converse refuses a conversation with toolUse / toolResult blocks and no toolConfig: a
    request that carries tool history without tools gets a spec per tool it names (with an open
    schema), and `tool_choice: "none"`, which Converse cannot say, drops the tools only when
    there is no such history. OpenAI's `allowed_tools` choice, which it cannot say either, is
    the allowed tools alone, with its mode as the choice."""
    history = _tool_names_used(messages)
    choice = body.get("tool_choice")
    allowed = M.allowed_tools(choice)
    choice = choice if allowed is None else allowed[0]
    specs: list[JsonObject] = []
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and (allowed is None or function.get("name") in allowed[1]):
            specs.append({"toolSpec": _tool_spec(function)})
            if (point := B.cache_point(tool)) is not None:
                specs.append(point)
    if choice == "none" and not history:
        return None
    if not specs:
        if not history:
            return None
        open_schema = {"json": {"type": "object"}}
        specs = [{"toolSpec": {"name": n, "inputSchema": open_schema}} for n in history]
        return {"tools": specs}
    config: JsonObject = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config["toolChoice"] = {"tool": {"name": str(choice["function"].get("name", ""))}}
    return config


def _tool_spec(function: Mapping[str, Any]) -> JsonObject:
    spec: JsonObject = {
        "name": str(function.get("name", "")),
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = str(function["description"])
    return spec


def _tool_names_used(messages: list[JsonObject]) -> list[str]:
    names: list[str] = []
    for message in messages:
        for block in message["content"]:
            name = (block.get("toolUse") or {}).get("name")
            if name and name not in names:
                names.append(str(name))
    return names


def _messages(messages: list[Any]) -> tuple[list[JsonObject], list[JsonObject]]:
    """(system blocks, messages): system and developer turns become `system`, tool results
    `toolResult` blocks of a user turn; turns of one role are merged (Converse alternates them)."""
    system: list[JsonObject] = []
    out: list[JsonObject] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role, content, at = message.get("role"), message.get("content"), f"messages[{i}]"
        if role in ("system", "developer"):
            system += B.text_blocks(content)
        elif role == "tool":
            M.append_turn(out, "user", "content", B.tool_result_blocks(message, at))
        elif role == "assistant":
            blocks = _reasoning_blocks(message.get("thinking_blocks"))
            blocks += B.text_blocks(content)
            blocks += _tool_uses(message.get("tool_calls") or [], f"{at}.tool_calls")
            M.append_turn(out, "assistant", "content", blocks)
        else:
            blocks = B.content_blocks(content, at) or M.blank_text(content, out, messages[i + 1 :])
            M.append_turn(out, "user", "content", blocks)
    return system, B.unique_document_names(out)


def _reasoning_blocks(given: Any) -> list[JsonObject]:
    """The signed reasoning an assistant turn came with (`thinking_blocks`), first in its turn,
    as Claude on Bedrock wants it back when tools are used."""
    blocks: list[JsonObject] = []
    for block in given if isinstance(given, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and block.get("signature"):
            text = {"text": str(block.get("thinking") or ""), "signature": str(block["signature"])}
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif block.get("type") == "redacted_thinking" and block.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": str(block["data"])}})
    return blocks


def _tool_uses(calls: list[Any], path: str) -> list[JsonObject]:
    blocks = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        arguments = str(function.get("arguments") or "")
        use = {
            "toolUseId": M.tool_id(str(call.get("id", ""))),
            "name": str(function.get("name", "")),
            "input": M.load_arguments(arguments, f"{path}[{i}].function.arguments"),
        }
        blocks.append({"toolUse": use})
        if (point := B.cache_point(call)) is not None:  # a tool_use's breakpoint (Messages API)
            blocks.append(point)
    return blocks


# --- response -----------------------------------------------------------------------------------


def new_id() -> str:
    """Converse answers carry no id of their own."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def usage(raw: Mapping[str, Any]) -> JsonObject:
    """OpenAI counts cached prompt tokens inside prompt_tokens; Bedrock reports cache reads and
    writes beside inputTokens. The total is the prompt's and the answer's, each token once:
    Bedrock's `totalTokens` counts the cache for some models and leaves it out for others."""
    cached = int(raw.get("cacheReadInputTokens") or 0)
    written = int(raw.get("cacheWriteInputTokens") or 0)
    prompt = int(raw.get("inputTokens") or 0) + cached + written
    completion = int(raw.get("outputTokens") or 0)
    hour = _written_for_an_hour(raw.get("cacheDetails"))
    return M.usage(prompt, completion, cached=cached, cache_write=written, cache_write_1h=hour)


def _written_for_an_hour(details: Any) -> int:
    """The cache writes kept an hour: `cacheDetails` splits the writes by TTL ("5m", "1h")."""
    if not isinstance(details, list):
        return 0
    hourly = [d for d in details if isinstance(d, dict) and d.get("ttl") == "1h"]
    return sum(int(d.get("inputTokens") or 0) for d in hourly)


def thinking_block(reasoning: Mapping[str, Any]) -> JsonObject:
    """A reasoningContent block as the `thinking_blocks` entry callers hand back (the shape of
    Anthropic's, as for the `anthropic` kind): signed text, or redacted."""
    if reasoning.get("redactedContent"):
        return {"type": "redacted_thinking", "data": str(reasoning["redactedContent"])}
    text = reasoning.get("reasoningText") or {}
    block: JsonObject = {"type": "thinking", "thinking": str(text.get("text", ""))}
    if text.get("signature"):
        block["signature"] = str(text["signature"])
    return block


def completion(data: Mapping[str, Any], model: str, created: int) -> JsonObject:
    """An OpenAI `chat.completion` for a Converse response."""
    message = data["output"]["message"]  # a 200 without them is malformed
    text: list[str] = []
    reasoning: list[str] = []
    signed: list[JsonObject] = []
    calls: list[JsonObject] = []
    for block in message.get("content") or []:
        if not isinstance(block, dict):
            continue
        if "text" in block:
            text.append(str(block["text"]))
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            arguments = M.dump_arguments(use.get("input"))
            calls.append(
                M.tool_call(str(use.get("toolUseId", "")), str(use.get("name")), arguments)
            )
        elif isinstance(block.get("reasoningContent"), dict):
            signed.append(thinking_block(block["reasoningContent"]))
            reasoning.append(str(signed[-1].get("thinking", "")))
    stop = data.get("stopReason")
    finish = finish_reason(stop) or "stop"
    if finish == "content_filter" and not "".join(text) and not calls:
        raise filtered(str(stop))
    out_message = M.assistant_message("".join(text), calls)
    if signed:
        out_message["reasoning_content"] = "".join(reasoning)
        out_message["thinking_blocks"] = signed
    raw_usage = data.get("usage")
    return M.completion(
        new_id(),
        created,
        model,
        out_message,
        finish,
        usage(raw_usage) if isinstance(raw_usage, dict) else None,
    )


class StreamMapper:
    """ConverseStream events → OpenAI chunks. Converse numbers content blocks; OpenAI numbers
    tool calls: `_tools` maps one to the other."""

    def __init__(self, model: str, created: int) -> None:
        self.id = new_id()
        self.model = model
        self.created = created
        self._tools: dict[int, int] = {}
        self._argued: set[int] = set()  # tool blocks that sent some input text
        # Reasoning blocks being streamed, sent whole (signature included) when they stop.
        self._thinking: dict[int, JsonObject] = {}
        self._content_sent = False

    def _chunk(self, delta: JsonObject | None, **kwargs: Any) -> JsonObject:
        return M.chunk(self.id, self.created, self.model, delta, **kwargs)

    def feed(self, event_type: str, event: Mapping[str, Any]) -> list[JsonObject]:
        index = int(event.get("contentBlockIndex") or 0)
        if event_type == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "contentBlockStart":
            return self._block_start(index, event.get("start") or {})
        if event_type == "contentBlockDelta":
            return self._block_delta(index, event.get("delta") or {})
        if event_type == "contentBlockStop":
            return self._block_stop(index)
        if event_type == "messageStop":
            reason = finish_reason(event.get("stopReason")) or "stop"
            if reason == "content_filter" and not self._content_sent:
                raise filtered(str(event.get("stopReason")))
            return [self._chunk({}, finish_reason=reason)]
        if event_type == "metadata":
            raw_usage = event.get("usage")
            if isinstance(raw_usage, dict):
                return [self._chunk(None, usage_obj=usage(raw_usage))]
        return []

    def _block_start(self, index: int, start: Mapping[str, Any]) -> list[JsonObject]:
        use = start.get("toolUse")
        if not isinstance(use, dict):
            return []
        position = self._tools.setdefault(index, len(self._tools))
        self._content_sent = True
        call = M.tool_call(str(use.get("toolUseId", "")), str(use.get("name", "")), "", position)
        return [self._chunk({"tool_calls": [call]})]

    def _block_stop(self, index: int) -> list[JsonObject]:
        if index in self._thinking:
            return [self._chunk({"thinking_blocks": [self._thinking.pop(index)]})]
        if index in self._tools and index not in self._argued:
            # A call without parameters streams no input; OpenAI's arguments are "{}".
            empty = {"index": self._tools[index], "function": {"arguments": "{}"}}
            return [self._chunk({"tool_calls": [empty]})]
        return []

    def _reasoning_delta(self, index: int, delta: Mapping[str, Any]) -> list[JsonObject]:
        """Reasoning text goes out as it comes; the block, signed, when it stops."""
        if delta.get("redactedContent"):
            self._thinking[index] = thinking_block(delta)
            return []
        block = self._thinking.setdefault(index, {"type": "thinking", "thinking": ""})
        if delta.get("signature"):
            block["signature"] = str(delta["signature"])
        text = str(delta.get("text") or "")
        if not text:
            return []
        block["thinking"] = str(block.get("thinking") or "") + text
        return [self._chunk({"reasoning_content": text})]

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[JsonObject]:
        if "text" in delta:
            self._content_sent = True
            return [self._chunk({"content": str(delta["text"])})]
        use = delta.get("toolUse")
        if isinstance(use, dict) and index in self._tools and use.get("input"):
            self._argued.add(index)
            partial = {"index": self._tools[index], "function": {"arguments": str(use["input"])}}
            return [self._chunk({"tool_calls": [partial]})]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            return self._reasoning_delta(index, reasoning)
        return []
