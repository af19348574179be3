"""What each provider takes as message content, as its documentation says. The fake answers a
request carrying anything else with the provider's 400, as the real API would: a mapping that
sends a shape its provider does not know fails the conformance suite instead of passing it.

- OpenAI chat content parts: text, image_url, input_audio (format wav or mp3; base64 data),
  file (file_data or file_id), refusal: https://platform.openai.com/docs/api-reference/chat/create
- Anthropic content blocks: text, image (base64 or url source), document (a base64 PDF, a url,
  plain text, or content), search_result, tool_use, tool_result (text, image, document and
  search_result blocks inside), thinking, redacted_thinking: https://docs.claude.com/en/api/messages,
  https://platform.claude.com/docs/en/build-with-claude/pdf-support and .../search-results;
  a tool_use's `id` and a tool_result's `tool_use_id` of letters, digits, `_` and `-` only;
  each tool_result answering a distinct tool_use of the message before
- Gemini parts: one of text, inlineData {mimeType, data}, fileData {fileUri}, functionCall,
  functionResponse (with `thought` / `thoughtSignature` beside); audio only as the MIME types of
  https://ai.google.dev/gemini-api/docs/audio: https://ai.google.dev/api/caching#Part
- Cohere user content: text and image_url parts: https://docs.cohere.com/reference/chat

- Mistral's models (by name, at any OpenAI-format server: Mistral's API, vLLM with Mistral's
  templates) take tool call ids of exactly 9 letters and digits, an assistant's call's `id` and
  a tool message's `tool_call_id` alike ("Tool call id was … but must be a-z, A-Z, 0-9, with a
  length of 9.", as Mistral's API answers another provider's `call_…` ids)

Beside content, OpenAI's chat API refuses two option shapes that its Responses API takes, so a
Responses translation that forwards them as they came fails here as it would there: an empty
`tools` array (minimum length 1; so is a legacy `functions` one) and `top_logprobs` without
`logprobs: true`. It also refuses `tool_choice` and `parallel_tool_calls` without `tools`
("'tool_choice' is only allowed when 'tools' are specified"; `function_call` without
`functions` alike), which frameworks send with no tools bound and other providers ignore,
and legacy `functions` beside `tools`.
"""

from __future__ import annotations

import re
from typing import Any

from . import _responses

JsonObject = dict[str, Any]

# How many stop sequences OpenAI's chat completions and Gemini's generateContent take.
OPENAI_MAX_STOPS = 4
GEMINI_MAX_STOPS = 5
_OPENAI_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
_OPENAI_AUDIO = frozenset({"wav", "mp3"})
_ANTHROPIC_BLOCKS = frozenset(
    {"text", "image", "document", "search_result", "tool_use", "tool_result", "thinking"}
    | {"redacted_thinking"}
    # A server tool's call and results, handed back in an assistant turn.
    | {"server_tool_use", "web_search_tool_result", "web_fetch_tool_result"}
    # Those of the code the searches that filter with code ran (web_search_20260209…).
    | {
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
    }
)
_ANTHROPIC_RESULT_BLOCKS = frozenset({"text", "image", "document", "search_result"})
# What a tool_use block's `id` (and a tool_result's `tool_use_id`) must match, as Anthropic says
# when one does not ("String should match pattern '^[a-zA-Z0-9_-]+$'").
_ANTHROPIC_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_ID_KEYS = {"tool_use": "id", "tool_result": "tool_use_id"}
_GEMINI_DATA = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse"})
_GEMINI_BESIDE = frozenset({"thought", "thoughtSignature"})
_GEMINI_AUDIO = frozenset(f"audio/{n}" for n in ("wav", "mp3", "aiff", "aac", "ogg", "flac"))
_COHERE_USER_PARTS = frozenset({"text", "image_url"})
# A Mistral model's name (`mistral-small-latest`, `open-mixtral-8x22b`, `codestral-latest`,
# `mistralai/Mistral-7B-Instruct-v0.3`) and the tool call ids its API takes.
MISTRAL_MODEL = re.compile(
    r"(?:^|[/:_.-])(?:mistral|mixtral|pixtral|codestral|devstral|magistral|ministral|voxtral)",
    re.IGNORECASE,
)
_MISTRAL_TOOL_ID = re.compile(r"[a-zA-Z0-9]{9}")


def _listed(content: Any) -> list[Any]:
    return content if isinstance(content, list) else []


def _object(value: Any) -> JsonObject:
    """`value` when it is an object, else an empty one (what a caller sent is anything)."""
    return value if isinstance(value, dict) else {}


def _kind(item: Any, key: str = "type") -> str | None:
    """`item[key]` when `item` is an object and that a string (a list is no key of a set)."""
    value = item.get(key) if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _objects(value: Any) -> list[JsonObject]:
    return [item for item in _listed(value) if isinstance(item, dict)]


# The options OpenAI's chat API takes beside tools (legacy functions) only.
_NEED_TOOLS = (
    ("tool_choice", "tools"),
    ("parallel_tool_calls", "tools"),
    ("function_call", "functions"),
)


def openai_problem(body: JsonObject) -> str | None:
    """Why OpenAI would refuse the messages' content parts or the options above, or None."""
    for tools in ("tools", "functions"):
        if body.get(tools) == []:
            return (
                f"Invalid '{tools}': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead."
            )
    if body.get("functions") and body.get("tools"):
        return "Invalid request: 'functions' and 'tools' cannot both be provided."
    for key, tools in _NEED_TOOLS:
        if body.get(key) is not None and not body.get(tools):
            return (
                f"Invalid value for '{key}': '{key}' is only allowed when '{tools}' are specified."
            )
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        return "Invalid value for 'top_logprobs': 'logprobs' must be true when it is set."
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > OPENAI_MAX_STOPS:
        return (
            "Invalid 'stop': array too long. Expected an array with maximum length "
            f"{OPENAI_MAX_STOPS}, but got an array with length {len(stop)} instead."
        )
    if MISTRAL_MODEL.search(str(body.get("model") or "")):
        refused = _mistral_tool_id_problem(_objects(body.get("messages")))
        if refused is not None:
            return refused
    for i, message in enumerate(_objects(body.get("messages"))):
        for j, part in enumerate(_listed(message.get("content"))):
            at = f"messages[{i}].content[{j}]"
            kind = _kind(part)
            if kind not in _OPENAI_PARTS:
                return (
                    f"Invalid value: {kind!r}. Supported values are: {sorted(_OPENAI_PARTS)} ({at})"
                )
            if kind == "input_audio":
                audio = _object(part.get("input_audio"))
                if _kind(audio, "format") not in _OPENAI_AUDIO or not audio.get("data"):
                    return f"Invalid input_audio: format must be 'wav' or 'mp3' ({at})"
            if kind == "file":
                file = _object(part.get("file"))
                if not file.get("file_data") and not file.get("file_id"):
                    return f"Missing required parameter: '{at}.file.file_data' or 'file_id'"
    return None


def _mistral_tool_id_problem(messages: list[JsonObject]) -> str | None:
    """Mistral's refusal of a tool call id that is not 9 letters and digits, or None."""
    calls = [c for m in messages for c in _objects(m.get("tool_calls"))]
    ids = [c.get("id") for c in calls] + [
        m["tool_call_id"] for m in messages if "tool_call_id" in m
    ]
    for call_id in ids:
        if not isinstance(call_id, str) or not _MISTRAL_TOOL_ID.fullmatch(call_id):
            return f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, with a length of 9."
    return None


def _anthropic_source(block: JsonObject) -> str | None:
    """What is wrong with an image or document block's source, or None."""
    source = _object(block.get("source"))
    kind = source.get("type")
    if kind == "url":
        return None if source.get("url") else "url: Field required"
    if block["type"] == "image":
        ok = kind == "base64" and str(source.get("media_type", "")).startswith("image/")
        return None if ok and source.get("data") else "source: Input should be a base64 image"
    if kind == "base64":
        ok = source.get("media_type") == "application/pdf" and source.get("data")
        return None if ok else "source.base64.media_type: Input should be 'application/pdf'"
    if kind == "text":
        ok = source.get("media_type") == "text/plain" and isinstance(source.get("data"), str)
        return None if ok else "source.text.media_type: Input should be 'text/plain'"
    return None if kind == "content" else f"source: Input tag {kind!r} does not match"


def _anthropic_blocks(blocks: list[Any], at: str, allowed: frozenset[str]) -> str | None:
    for j, block in enumerate(blocks):
        kind = _kind(block)
        where = f"{at}.{j}"
        if kind not in allowed:
            return f"{where}: Input tag {kind!r} found using 'type' matches no expected tag"
        problem = _anthropic_source(block) if kind in ("image", "document") else None
        key = _TOOL_ID_KEYS.get(str(kind))
        if key is not None and not _ANTHROPIC_TOOL_ID.fullmatch(str(block.get(key, ""))):
            problem = f"{key}: String should match pattern '^[a-zA-Z0-9_-]+$'"
        if problem is None and kind == "tool_result":
            inner = _listed(block.get("content"))
            problem = _anthropic_blocks(inner, f"{where}.content", _ANTHROPIC_RESULT_BLOCKS)
        if problem is not None:
            return problem if problem.startswith(where) else f"{where}.{kind}.{problem}"
    return None


def anthropic_problem(body: JsonObject) -> str | None:
    """Why Anthropic would refuse the messages' content blocks, or None."""
    uses: set[str] = set()  # the previous message's tool_use ids
    for i, message in enumerate(_objects(body.get("messages"))):
        blocks = _listed(message.get("content"))
        problem = _anthropic_blocks(blocks, f"messages.{i}.content", _ANTHROPIC_BLOCKS)
        if problem is None:
            problem = _anthropic_results(blocks, f"messages.{i}.content", uses)
        if problem is not None:
            return problem
        uses = {str(b.get("id")) for b in _objects(blocks) if _kind(b) == "tool_use"}
    return None


def _anthropic_results(blocks: list[Any], at: str, uses: set[str]) -> str | None:
    """Why Anthropic would refuse a message's tool_result blocks: each answers a distinct
    tool_use of the message before, as its API says when one does not."""
    answered: set[str] = set()
    for j, block in enumerate(_objects(blocks)):
        if _kind(block) != "tool_result":
            continue
        use_id = str(block.get("tool_use_id"))
        if use_id in answered:
            return (
                f"{at}.{j}: each tool_use must have a single result. Found multiple "
                f"`tool_result` blocks with id: {use_id}"
            )
        if use_id not in uses:
            return (
                f"{at}.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {use_id}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the "
                "previous message."
            )
        answered.add(use_id)
    return None


def _gemini_part(part: Any) -> str | None:
    if not isinstance(part, dict):
        return "must be an object"
    data = [key for key in part if key in _GEMINI_DATA]
    unknown = [key for key in part if key not in _GEMINI_DATA | _GEMINI_BESIDE]
    if unknown:
        return f'Unknown name "{unknown[0]}": Cannot find field.'
    if len(data) != 1:
        return "a part must carry exactly one of its data fields"
    if part.get("inlineData") is not None:
        inline = _object(part["inlineData"])
        mime = str(inline.get("mimeType") or "")
        if not mime or not inline.get("data"):
            return "inlineData needs mimeType and data"
        if mime.startswith("audio/") and mime not in _GEMINI_AUDIO:
            return f"Unsupported MIME type: {mime}"
    if "fileData" in part and not _object(part["fileData"]).get("fileUri"):
        return "fileData needs fileUri"
    return None


def gemini_problem(body: JsonObject, vertex: bool = False) -> str | None:
    """Why Gemini would refuse the contents' parts, its stop sequences or (the Gemini API, not
    `vertex`: HarmBlockMethod is Vertex AI's) a safety setting's `method`, or None
    (google.rpc INVALID_ARGUMENT). Both take a function call's and response's `id`."""
    for i, setting in enumerate(_objects(body.get("safetySettings"))):
        if not vertex and "method" in setting:
            return (
                f'Invalid JSON payload received. Unknown name "method" at '
                f"'safety_settings[{i}]': Cannot find field."
            )
    config = body.get("generationConfig")
    if config is not None and not isinstance(config, dict):
        return "Invalid value at 'generation_config': expected an object"
    stops = _object(config).get("stopSequences")
    if isinstance(stops, list) and len(stops) > GEMINI_MAX_STOPS:
        return (
            "* GenerationConfig.stop_sequences: at most "
            f"{GEMINI_MAX_STOPS} stop sequences are supported, got {len(stops)}"
        )
    for i, content in enumerate(_objects(body.get("contents"))):
        for j, part in enumerate(_listed(content.get("parts"))):
            problem = _gemini_part(part)
            if problem is not None:
                return f"Invalid JSON payload received at 'contents[{i}].parts[{j}]': {problem}"
    return None


def cohere_problem(body: JsonObject) -> str | None:
    """Why Cohere would refuse a user message's content parts, or None."""
    for i, message in enumerate(_objects(body.get("messages"))):
        if message.get("role") != "user":
            continue
        for j, part in enumerate(_listed(message.get("content"))):
            kind = _kind(part)
            if kind not in _COHERE_USER_PARTS:
                return f"invalid request: messages[{i}].content[{j}]: unknown type {kind!r}"
    return None


def said(body: dict[str, Any]) -> str:
    """What a scenario rule's `text` picks a request by (one line of a batch of one model), ""
    when it has none: a chat request's last user message (Gemini's `contents` too), a
    Responses request's `input` (its last user message), an embedding's, a moderation's or a
    speech's `input` (of a list, the last; Cohere's embedding's `texts`, Gemini's `content`)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return _responses.last_user_text(messages)
    contents = body.get("contents")
    if isinstance(contents, list):  # Gemini: `parts` for `content`, a user's role or none
        turns = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
        return _responses.message_text(turns[-1].get("parts")) if turns else ""
    content = body.get("content")
    if isinstance(content, dict):  # Gemini's embedding
        return _responses.message_text(content.get("parts"))
    given = body.get("input", body.get("texts"))  # Cohere's embedding: `texts`
    if isinstance(given, list) and given:
        if isinstance(given[-1], dict):  # Responses input items
            return _responses.last_user_text(given)
        given = given[-1]
    return given if isinstance(given, str) else ""
