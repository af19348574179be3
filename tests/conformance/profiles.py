"""One profile per adapter kind: how to point a provider of that kind at the fake upstream, and
how to read back, from the provider's own wire format, what an upstream request carried.

Adding a provider means adding its adapter and a profile here; the conformance tests run
unchanged against every profile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from router_service.fake_upstream import FakeUpstream
from tests.entra_keys import entra_keys, entra_settings
from tests.vertex_keys import PROJECT, vertex_keys

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


def _as_given(fake: FakeUpstream, labels: list[str]) -> list[str]:
    return labels


def _no_settings(fake: FakeUpstream) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Profile:
    kind: str
    base_url: Callable[[FakeUpstream], str]
    read: Callable[[Body], Seen]
    extra: dict[str, Any] = field(default_factory=dict)  # further ProviderConfig fields
    overloaded_status: int = 503  # how the provider says it is overloaded
    embeds: bool = True
    # Content part kinds beyond text and images its format takes (what reaches the provider).
    takes: frozenset[str] = frozenset({"file", "input_audio", "file_id"})
    # The configured keys for the labels the fake records calls under (the labels themselves,
    # but for kinds whose keys are credentials the fake must trust first).
    key_secrets: Callable[[FakeUpstream, list[str]], list[str]] = _as_given
    name: str = ""  # the profile's name when one kind has several (default: the kind)
    speaks: str = ""  # whose format its "cannot take" messages name (default: the kind)
    links_images: bool = True  # takes an image by its http(s) URL (not only as data)
    # Further ProviderConfig fields that point at the fake (where tokens are issued).
    fake_settings: Callable[[FakeUpstream], dict[str, Any]] = _no_settings

    def provider(self, fake: FakeUpstream, keys: list[str]) -> dict[str, Any]:
        secrets = self.key_secrets(fake, keys)
        settings = {**self.extra, **self.fake_settings(fake)}
        return {"kind": self.kind, "base_url": self.base_url(fake), "keys": secrets, **settings}

    def secret(self, fake: FakeUpstream, label: str) -> str:
        """The configured key the fake records under `label` (what its fingerprint is of)."""
        return self.key_secrets(fake, [label])[0]

    @property
    def says(self) -> str:
        return self.speaks or self.kind

    def __str__(self) -> str:
        return self.name or self.kind


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


PROFILES: list[Profile] = [
    Profile("openai", lambda fake: fake.base_url, read_openai),
    Profile(
        "gemini",
        lambda fake: f"{fake.url}/v1beta",
        read_gemini,
        takes=frozenset({"file", "input_audio"}),
    ),
    Profile(
        "anthropic",
        lambda fake: fake.base_url,
        read_anthropic,
        extra={"api_version": "2023-06-01"},
        overloaded_status=529,
        embeds=False,
        takes=frozenset({"file"}),  # PDFs and plain text: Claude has no audio input
    ),
    Profile("cohere", lambda fake: fake.url, read_cohere, takes=frozenset()),
    Profile(
        "cloudflare",
        lambda fake: f"{fake.url}/client/v4",
        read_openai,
        extra={"account_id": "acct-123"},
    ),
    # The deployment names the model in the path; the body is OpenAI's.
    Profile("azure", lambda fake: fake.url, read_openai, extra={"api_version": "2024-10-21"}),
    # The same API, its keys Microsoft Entra ID service principals: their client credentials
    # are exchanged at the fake's token endpoint for the bearer tokens the calls carry.
    Profile(
        "azure",
        lambda fake: fake.url,
        read_openai,
        extra={"api_version": "2024-10-21"},
        key_secrets=entra_keys,
        fake_settings=entra_settings,
        name="azure-entra",
    ),
    # Gemini's and Claude's bodies at Vertex AI's paths; the keys are service account keys,
    # exchanged at the fake's token endpoint for the bearer tokens the calls carry.
    Profile(
        "vertex",
        lambda fake: fake.url,
        read_gemini,
        extra={"project": PROJECT, "location": "us-central1"},
        takes=frozenset({"file", "input_audio"}),
        key_secrets=vertex_keys,
        speaks="gemini",
    ),
    Profile(
        "vertex",
        lambda fake: fake.url,
        read_anthropic,
        extra={"project": PROJECT, "location": "europe-west1", "publisher": "anthropic"},
        overloaded_status=529,
        embeds=False,
        takes=frozenset({"file"}),
        key_secrets=vertex_keys,
        name="vertex-anthropic",
        speaks="anthropic",
    ),
    Profile(
        "bedrock",
        lambda fake: fake.url,
        read_bedrock,
        extra={"region": "us-east-1"},
        embeds=False,
        takes=frozenset({"file"}),  # documents; Converse takes no audio
        links_images=False,  # images as data (or s3://), never fetched from a link
    ),
]
BY_KIND = {str(profile): profile for profile in PROFILES}

# Each kind fails over to another kind once and is failed over to once; Anthropic → Gemini is
# the issue's own example.
FALLBACK_PAIRS: list[tuple[Profile, Profile]] = [
    (BY_KIND[a], BY_KIND[b])
    for a, b in (
        ("anthropic", "gemini"),
        ("gemini", "cohere"),
        ("cohere", "cloudflare"),
        ("cloudflare", "azure"),
        ("azure", "azure-entra"),
        ("azure-entra", "vertex"),
        ("vertex", "vertex-anthropic"),
        ("vertex-anthropic", "openai"),
        ("openai", "bedrock"),
        ("bedrock", "anthropic"),
    )
]

KEYS = ["k-1", "k-2"]


def conformance_config(fake: FakeUpstream, profile: Profile, **sections: Any) -> dict[str, Any]:
    """A provider of the profile's kind with two keys (`up`), an OpenAI-compatible backup, and:
    `solo` (up only), `chain` (up, then backup), `vectors` (up's embedding model)."""
    config: dict[str, Any] = {
        "providers": {
            "up": profile.provider(fake, list(KEYS)),
            "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
        },
        "models": {
            "solo": {"deployments": [{"provider": "up", "model": "m-up"}]},
            "chain": {
                "deployments": [
                    {"provider": "up", "model": "m-up"},
                    {"provider": "backup", "model": "m-backup"},
                ]
            },
            "vectors": {"deployments": [{"provider": "up", "model": "e-up"}]},
        },
        "server": {"port": 0},
        "streams": {"heartbeat_s": 5},
        "auth": {"open": True},
    }
    config.update(sections)
    return config


def mixed_config(fake: FakeUpstream, first: Profile, second: Profile) -> dict[str, Any]:
    """Group `mixed`: a deployment of `first`'s kind, then one of `second`'s."""
    return {
        "providers": {
            "first": first.provider(fake, ["k-first"]),
            "second": second.provider(fake, ["k-second"]),
        },
        "models": {
            "mixed": {
                "deployments": [
                    {"provider": "first", "model": "m-first"},
                    {"provider": "second", "model": "m-second"},
                ]
            }
        },
        "server": {"port": 0},
        "auth": {"open": True},
    }
