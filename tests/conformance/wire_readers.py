"""How to read back, from each provider's own wire format, what an upstream request carried:
one reader per dialect, each giving the same normalised `Seen` (the conformance profiles in
profiles.py name theirs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

Body = dict[str, Any]


@dataclass(frozen=True)
class Seen:
    """An upstream request, normalised: what the provider was asked, whatever its format."""

    system: str = ""
    texts: list[str] = field(default_factory=list)  # text of the user turns
    images: list[str] = field(default_factory=list)  # base64 data, or the URL of a linked image
    # (media type, base64 data or URL) of each document; ("file_id", id) for an OpenAI file id.
    documents: list[tuple[str, str]] = field(default_factory=list)
    audio: list[tuple[str, str]] = field(default_factory=list)  # (MIME type, base64 data)
    stop: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    tools: list[str] = field(default_factory=list)  # names of the tools offered
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)  # (name, arguments object)
    tool_results: list[str] = field(default_factory=list)
    # What each tool result names its call by: the call id (Gemini: its function name too).
    tool_refs: list[str] = field(default_factory=list)


def _b64(url: str) -> str:
    return url.split(",", 1)[1] if url.startswith("data:") else url


def _stops(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _loads(text: str) -> Any:
    return orjson.loads(text) if text else {}


# --- OpenAI dialect (openai, cloudflare, azure) ------------------------------------------------


def _openai_parts(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content or []


def _openai_media(seen: Seen, parts: list[dict[str, Any]]) -> None:
    for part in parts:
        if part.get("type") == "file" and "file_id" in part["file"]:
            seen.documents.append(("file_id", part["file"]["file_id"]))
        elif part.get("type") == "file":
            header, data = part["file"]["file_data"].split(",", 1)
            seen.documents.append((header.removeprefix("data:").removesuffix(";base64"), data))
        elif part.get("type") == "input_audio":
            audio = part["input_audio"]
            seen.audio.append((f"audio/{audio['format']}", audio["data"]))


def read_openai(body: Body) -> Seen:
    seen = Seen(
        stop=_stops(body.get("stop")),
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        tools=[t["function"]["name"] for t in body.get("tools") or []],
    )
    system: list[str] = []
    for message in body.get("messages") or []:
        parts = _openai_parts(message.get("content"))
        texts = [p["text"] for p in parts if p.get("type") == "text"]
        if message["role"] in ("system", "developer"):
            system += texts
        elif message["role"] == "user":
            seen.texts.extend(texts)
            seen.images.extend(_b64(p["image_url"]["url"]) for p in parts if "image_url" in p)
            _openai_media(seen, parts)
        elif message["role"] == "tool":
            seen.tool_results.append("".join(texts))
            seen.tool_refs.append(message["tool_call_id"])
        for call in message.get("tool_calls") or []:
            function = call["function"]
            seen.tool_calls.append((function["name"], _loads(function["arguments"])))
    return Seen(**{**seen.__dict__, "system": "\n\n".join(system)})


# --- Gemini -------------------------------------------------------------------------------------


def _gemini_media(seen: Seen, part: Body) -> None:
    inline = part.get("inlineData") or {}
    mime = inline.get("mimeType") or part["fileData"]["mimeType"]
    data = inline.get("data") or part["fileData"]["fileUri"]
    if mime.startswith("image/"):
        seen.images.append(data)
    elif mime.startswith("audio/"):
        seen.audio.append((mime, data))
    else:
        seen.documents.append((mime, data))


def read_gemini(body: Body) -> Seen:
    config = body.get("generationConfig") or {}
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
    system = body.get("systemInstruction") or {"parts": []}
    seen = Seen(
        system="".join(p.get("text", "") for p in system["parts"]),
        stop=list(config.get("stopSequences") or []),
        max_tokens=config.get("maxOutputTokens"),
        tools=[d["name"] for d in declarations],
    )
    for content in body.get("contents") or []:
        for part in content["parts"]:
            if "text" in part and content["role"] == "user":
                seen.texts.append(part["text"])
            elif "inlineData" in part or "fileData" in part:
                _gemini_media(seen, part)
            elif "functionCall" in part:
                call = part["functionCall"]
                seen.tool_calls.append((call["name"], call.get("args") or {}))
            elif "functionResponse" in part:
                response = part["functionResponse"]
                seen.tool_results.append(response["response"].get("result", ""))
                seen.tool_refs.append(response.get("id") or response["name"])
    return seen


# --- Anthropic ----------------------------------------------------------------------------------


def read_anthropic(body: Body) -> Seen:
    system = body.get("system") or ""
    seen = Seen(
        system=system if isinstance(system, str) else "".join(b["text"] for b in system),
        stop=list(body.get("stop_sequences") or []),
        max_tokens=body.get("max_tokens"),
        tools=[t["name"] for t in body.get("tools") or []],
    )
    for message in body.get("messages") or []:
        content = message["content"]
        blocks: list[Body] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else content
        )
        for block in blocks:
            kind = block["type"]
            if kind == "text" and message["role"] == "user":
                seen.texts.append(block["text"])
            elif kind == "image":
                source = block["source"]
                seen.images.append(source.get("data") or source.get("url"))
            elif kind == "document":
                source = block["source"]
                media = source.get("media_type") or "application/pdf"  # a url source: a PDF
                seen.documents.append((media, source.get("data") or source["url"]))
            elif kind == "tool_use":
                seen.tool_calls.append((block["name"], block["input"]))
            elif kind == "tool_result":
                seen.tool_results.append(block["content"])
                seen.tool_refs.append(block["tool_use_id"])
    return seen


# --- Cohere -------------------------------------------------------------------------------------


def read_cohere(body: Body) -> Seen:
    seen = Seen(
        stop=list(body.get("stop_sequences") or []),
        max_tokens=body.get("max_tokens"),
        tools=[t["function"]["name"] for t in body.get("tools") or []],
    )
    system: list[str] = []
    for message in body.get("messages") or []:
        role = message["role"]
        parts = _openai_parts(message.get("content"))
        texts = [p["text"] for p in parts if p.get("type") == "text"]
        if role == "system":
            system += texts
        elif role == "user":
            seen.texts.extend(texts)
            seen.images.extend(_b64(p["image_url"]["url"]) for p in parts if "image_url" in p)
        elif role == "tool":
            seen.tool_results.append("".join(texts))
            seen.tool_refs.append(message["tool_call_id"])
        for call in message.get("tool_calls") or []:
            function = call["function"]
            seen.tool_calls.append((function["name"], _loads(function["arguments"])))
    return Seen(**{**seen.__dict__, "system": "\n\n".join(system)})


# --- Bedrock (Converse) ---------------------------------------------------------------------------

_BEDROCK_DOCUMENTS = {"pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown"}


def _bedrock_source(source: Body) -> str:
    return str(source.get("bytes") or source["s3Location"]["uri"])


def _bedrock_block(seen: Seen, block: Body, role: str) -> None:
    if "text" in block and role == "user":
        seen.texts.append(block["text"])
    elif "image" in block:
        seen.images.append(_bedrock_source(block["image"]["source"]))
    elif "document" in block:
        document = block["document"]
        media = _BEDROCK_DOCUMENTS.get(document["format"], document["format"])
        seen.documents.append((media, _bedrock_source(document["source"])))
    elif "toolUse" in block:
        seen.tool_calls.append((block["toolUse"]["name"], block["toolUse"]["input"]))
    elif "toolResult" in block:
        result = block["toolResult"]
        seen.tool_results.append("".join(b.get("text", "") for b in result["content"]))
        seen.tool_refs.append(result["toolUseId"])


def read_bedrock(body: Body) -> Seen:
    inference = body.get("inferenceConfig") or {}
    tools = (body.get("toolConfig") or {}).get("tools") or []
    seen = Seen(
        system="\n\n".join(b["text"] for b in body.get("system") or [] if "text" in b),
        stop=list(inference.get("stopSequences") or []),
        max_tokens=inference.get("maxTokens"),
        tools=[t["toolSpec"]["name"] for t in tools if "toolSpec" in t],
    )
    for message in body.get("messages") or []:
        for block in message["content"]:
            _bedrock_block(seen, block, message["role"])
    return seen
