"""OpenAI chat dialect → Gemini API (Generative Language, v1beta) request bodies. The answers'
side (candidates → OpenAI's completions and chunks) is `_gemini_answer`.

Followed:
- generateContent / streamGenerateContent, GenerationConfig:
  https://ai.google.dev/api/generate-content
- Content and Part (text, inlineData, fileData, functionCall, functionResponse), Tool,
  FunctionDeclaration (parametersJsonSchema), ToolConfig: https://ai.google.dev/api/caching
- Function calling round trip (functionCall → functionResponse in a user turn):
  https://ai.google.dev/gemini-api/docs/function-calling. A tool result's media (its image_url,
  file and input_audio parts) go where the model reads them: given inline, at Gemini 3 and
  later, in the functionResponse's own `parts` (FunctionResponsePart inlineData: "multimodal
  function responses", function-calling#multimodal); at an earlier model, which takes no parts
  there, or given by URL (FunctionResponsePart fileData is Vertex AI's, not the Gemini API's),
  as parts of the same user turn after the functionResponse.
- System instructions: https://ai.google.dev/gemini-api/docs/text-generation#system-instructions
- Media as parts: inline base64 (`inlineData`) or by URL (`fileData`):
  https://ai.google.dev/gemini-api/docs/file-input-methods. OpenAI `file` parts go with the
  media type their data URL names (PDFs with vision, other documents as text:
  https://ai.google.dev/gemini-api/docs/document-processing); `input_audio` with Gemini's
  audio MIME type (audio/wav, audio/mp3, audio/aiff, audio/aac, audio/ogg, audio/flac:
  https://ai.google.dev/gemini-api/docs/audio). An OpenAI Files API id is UNSUPPORTED_INPUT.
- Thought signatures (a functionCall part's `thoughtSignature`, required back on the current
  turn's first call by Gemini 3; the documented stand-in for histories without one):
  https://ai.google.dev/gemini-api/docs/thought-signatures. Callers see it where Gemini's own
  OpenAI-compatible endpoint puts it: `tool_calls[].extra_content.google.thought_signature`.
- Thought summaries (`thinkingConfig.includeThoughts`):
  https://ai.google.dev/gemini-api/docs/thinking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from clients.codec.gemini import (
    AUDIO_TYPES,
    CALLING_MODES,
    GEMINI_ONLY,
    thought_signature,
)
from router_service.providers import _mapping as M
from router_service.providers._gemini_config import (
    callers_config,
    carried_config,
    mapped_config,
    refined_config,
)
from router_service.providers._legacy_functions import no_forced_legacy_call
from router_service.providers._media import audio_input, file_input
from router_service.providers._media_types import guess_media_type
from router_service.providers._reasoning_budgets import gemini_thinking_config

JsonObject = dict[str, Any]

# What Gemini takes in place of a signature it never gave (a history from another model, or a
# client that dropped `extra_content`): validation is skipped for that call.
_NO_SIGNATURE = "skip_thought_signature_validator"
# A Gemini model name's major version (`gemini-3-pro-preview`, `models/gemini-2.5-flash`).
_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")


# --- request ------------------------------------------------------------------------------------


def request_body(body: Mapping[str, Any], model: str = "", *, vertex: bool = False) -> JsonObject:
    """A generateContent body for an OpenAI-dialect chat body (for `model`: the thinking budget
    it takes; `vertex`: for Vertex AI, which alone takes a safety setting's `method`). Function
    calls and their results keep their ids at both: Vertex AI's v1 FunctionCall and
    FunctionResponse have an `id` as the Gemini API's do (google.cloud.aiplatform.v1, since
    March 2025), so a result is matched to its call by id, not by order and name."""
    no_forced_legacy_call(body)
    messages = body.get("messages") or []
    system, contents = _contents(messages, M.tool_names_by_id(messages), _nests_media(model))
    out: JsonObject = {**M.passthrough(body), "contents": contents}
    own = callers_config(out)
    if body.get(GEMINI_ONLY) is not None:  # the Gemini entrance's labels, safetySettings…
        carried = carried_config(body[GEMINI_ONLY], vertex=vertex)
        own = refined_config(own, callers_config(carried))
        out.update(carried)
    if system:
        out["systemInstruction"] = {"parts": [{"text": system}]}
    config = mapped_config(body)
    top_k = out.pop("top_k", None)  # the common extension to OpenAI's sampling (vLLM, LiteLLM…)
    if top_k is not None:
        config["topK"] = top_k
    thinking = gemini_thinking_config(out, body, model)
    if thinking is not None and "thinkingConfig" not in own:  # the caller's own wins
        config["thinkingConfig"] = thinking
    refined = refined_config(config, own)
    if refined:
        out["generationConfig"] = refined
    functions = M.function_tools(body)
    if functions:
        out["tools"] = [{"functionDeclarations": [_declaration(f) for f in functions]}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None:
            out["toolConfig"] = tool_config
    return out


def _declaration(function: Mapping[str, Any]) -> JsonObject:
    # parametersJsonSchema takes JSON Schema as OpenAI tools write it (`parameters` would need
    # Gemini's OpenAPI subset).
    out: JsonObject = {"name": function.get("name", "")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _tool_config(choice: Any) -> JsonObject | None:
    allowed = M.allowed_tools(choice)  # its tools alone are declared (`function_tools`)
    choice = choice if allowed is None else allowed[0]
    if isinstance(choice, str) and choice in CALLING_MODES:
        return {"functionCallingConfig": {"mode": CALLING_MODES[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name", "")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def _nests_media(model: str) -> bool:
    """Whether `model` takes media inside a functionResponse (Gemini 3 and later); an earlier
    or unknown name (an alias, a tuned model) gets them beside it, which every model reads."""
    found = _GEMINI_MAJOR.search(model)
    return found is not None and int(found.group(1)) >= 3


def _contents(
    messages: list[Any], names: Mapping[str, str], nested: bool
) -> tuple[str, list[JsonObject]]:
    """(system instruction, contents): roles user/model, tool results as functionResponse
    parts of a user turn (`nested`: their media inside them), consecutive turns of one role
    merged."""
    system: list[str] = []
    contents: list[JsonObject] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(M.text_of(content))
        elif role == "tool":
            parts = _function_response(message, names, nested, f"messages[{i}]")
            M.append_turn(contents, "user", "parts", parts)
        elif role == "assistant":
            parts = _parts(content, f"messages[{i}]")
            parts += _calls(message.get("tool_calls") or [], f"messages[{i}].tool_calls")
            M.append_turn(contents, "model", "parts", parts)
        else:
            M.append_turn(contents, "user", "parts", _parts(content, f"messages[{i}]"))
    return "\n\n".join(s for s in system if s), contents


def _function_response(
    message: Mapping[str, Any], names: Mapping[str, str], nested: bool, path: str
) -> list[JsonObject]:
    """A tool message as a functionResponse part: its text is the `response`, its media inside
    it (`nested`) or after it, never dropped."""
    call_id = str(message.get("tool_call_id", ""))
    response: JsonObject = {"name": names.get(call_id, call_id)}
    if call_id in names:  # the id of a call in this history: Gemini 3 matches by it
        response["id"] = call_id
    content = message.get("content")
    response["response"] = _result(content, M.failed_result(message))
    media = [part for part in _parts(content, path) if "text" not in part]
    # The Gemini API takes inline data only inside a functionResponse (its FunctionResponsePart
    # fileData is Vertex AI's): a link goes beside it, where every model reads one.
    inside = [part for part in media if nested and "inlineData" in part]
    if inside:
        response["parts"] = inside
    return [{"functionResponse": response}, *(part for part in media if part not in inside)]


def _parts(content: Any, path: str) -> list[JsonObject]:
    parts: list[JsonObject] = []
    for j, part in enumerate(M.parts_of(content)):
        kind, at = part.get("type"), f"{path}.content[{j}]"
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            url = M.image_url(part)
            inline = M.split_data_url(url)
            if inline is not None:
                parts.append(_inline(*inline))
            else:
                parts.append({"fileData": {"mimeType": guess_media_type(url), "fileUri": url}})
        elif kind == "file":
            file = file_input(part, "gemini", at)
            if file.url:
                parts.append({"fileData": {"mimeType": file.media_type, "fileUri": file.url}})
            else:
                parts.append(_inline(file.media_type, file.data))
        elif kind == "input_audio":
            parts.append(_audio(part, at))
        else:
            raise M.unsupported(f"gemini does not take {kind!r} content parts", at)
    return parts


def _inline(mime_type: str, data: str) -> JsonObject:
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _audio(part: Mapping[str, Any], path: str) -> JsonObject:
    audio_format, data = audio_input(part, path)
    mime_type = AUDIO_TYPES.get(audio_format)
    if mime_type is None:
        raise M.unsupported(
            f"gemini takes audio as {', '.join(AUDIO_TYPES)}, not {audio_format!r}",
            f"{path}.input_audio.format",
        )
    return _inline(mime_type, data)


def _calls(calls: list[Any], path: str) -> list[JsonObject]:
    parts = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        args = M.load_arguments(str(function.get("arguments") or ""), f"{path}[{i}]")
        name = str(function.get("name", ""))
        # The call's id goes back with it and with its result: Gemini 3 matches a
        # functionResponse to its functionCall by id (a mismatch is an empty answer).
        ident = {"id": str(call["id"])} if call.get("id") else {}
        part: JsonObject = {"functionCall": {**ident, "name": name, "args": args}}
        signature = thought_signature(call)
        # Gemini 3 refuses a turn whose first call comes back without its signature (400).
        if signature or i == 0:
            part["thoughtSignature"] = signature or _NO_SIGNATURE
        parts.append(part)
    return parts


def _result(content: Any, failed: bool) -> JsonObject:
    """A tool result as the JSON object functionResponse.response must be; a failed one's
    under the `error` key, which Gemini reads as the call's error details (as it is when it
    has that key already: a Gemini caller's own response)."""
    text = M.text_of(content)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if failed and not (isinstance(value, dict) and "error" in value):
        return {"error": value if isinstance(value, dict) else text}
    return value if isinstance(value, dict) else {"result": text}
