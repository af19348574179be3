"""Pure builders for OpenAI wire-format payloads (no I/O), deterministic for a given request."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from ._audio_answers import audio_deltas, audio_message
from ._scenario import Scenario

SYSTEM_FINGERPRINT = "fp_fake"
TOOL_CALL_ID = "call_fake_1"
MODEL_CREATED = 1_700_000_000
DEFAULT_EMBEDDING_DIMS = 8
DONE_EVENT = b"data: [DONE]\n\n"
# Filler used when a scenario asks for more chunks than the answer has words.
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
_PIECE = re.compile(r"\S+\s*")


def count_words(text: str) -> int:
    return len(text.split())


def message_text(content: Any) -> str:
    """Text of a message `content`: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and "text" in p]
        return " ".join(str(p) for p in parts)
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return sum(count_words(message_text(m.get("content"))) for m in messages if isinstance(m, dict))


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def tool_to_call(body: dict[str, Any], scenario: Scenario) -> str | None:
    """Name of the tool to call, if the scenario asks for a tool call and the request allows it."""
    tools = body.get("tools")
    if not scenario.tool_call or not isinstance(tools, list) or not tools:
        return None
    messages = body.get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None  # the tool already answered: a real model now replies in text
    if scenario.tool_name is not None:
        return scenario.tool_name
    first: Any = tools[0] if isinstance(tools[0], dict) else {}
    # Accept the modern {"type": "function", "function": {...}} shape (a custom tool's, under
    # "custom") and the bare legacy one.
    function: Any = first.get("function", first.get("custom"))
    if not isinstance(function, dict):
        function = first
    return str(function.get("name") or "tool")


def _pieces(text: str) -> list[str]:
    pieces = _PIECE.findall(text)
    if not pieces:
        return [text]  # empty/whitespace-only answer still yields one content chunk
    lead = text[: len(text) - len(text.lstrip())]
    pieces[0] = lead + pieces[0]
    return pieces


def split_pieces(text: str, chunks: int | None) -> tuple[str, list[str]]:
    """Split the answer into stream pieces that concatenate back to the (possibly padded) text.

    Default: one piece per word, each keeping its trailing whitespace. With `chunks`, exactly
    that many pieces; the text is padded with filler words if it has too few.
    """
    pieces = _pieces(text)
    if chunks is None or chunks == 0:
        return text, pieces
    missing = chunks - len(_PIECE.findall(text))
    if missing > 0:
        filler = [_FILLER[i % len(_FILLER)] for i in range(missing)]
        text = f"{text.rstrip()} {' '.join(filler)}" if text.strip() else " ".join(filler)
        pieces = _pieces(text)
    size, extra = divmod(len(pieces), chunks)
    grouped: list[str] = []
    start = 0
    for i in range(chunks):
        end = start + size + (1 if i < extra else 0)
        grouped.append("".join(pieces[start:end]))
        start = end
    return text, grouped


def answer_text(body: dict[str, Any], scenario: Scenario) -> str:
    if scenario.content is not None:
        return scenario.content
    return "Echo: " + last_user_text(body.get("messages") or [])


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt)}
    return out


def tool_arguments(scenario: Scenario) -> str:
    """The JSON arguments of the scenario's tool call."""
    return orjson.dumps(scenario.tool_arguments or {}).decode()


def is_custom(body: dict[str, Any], name: str | None) -> bool:
    """Whether the request declares the tool `name` a custom one (chat completions' form)."""
    for tool in body.get("tools") or ():
        custom = tool.get("custom") if isinstance(tool, dict) else None
        if tool.get("type") == "custom" and isinstance(custom, dict) and custom.get("name") == name:
            return True
    return False


def tool_call_obj(name: str, arguments: str = "{}", custom: bool = False) -> dict[str, Any]:
    """A call of `name` with `arguments`; a custom tool's (`custom`): with that input."""
    if custom:
        return {"id": TOOL_CALL_ID, "type": "custom", "custom": {"name": name, "input": arguments}}
    return {
        "id": TOOL_CALL_ID,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


@dataclass(frozen=True)
class ChatAnswer:
    """Everything that differs between completions; shared by stream and non-stream output."""

    completion_id: str
    created: int
    model: str
    text: str
    pieces: list[str]
    tool_name: str | None
    prompt_tokens: int
    tool_arguments: str = "{}"  # a custom tool's call: its input
    custom: bool = False  # the tool called is a custom one
    finish: str | None = None  # the scenario's finish reason for a text answer
    n: int = 1  # OpenAI's `n`: that many choices, all the same answer
    top_logprobs: int | None = None  # OpenAI's, when the request asked for `logprobs: true`
    cached_tokens: int = 0  # of the prompt's, reported in usage (Scenario.cached_tokens)
    cache_write_tokens: int = 0  # written to the prompt cache (Scenario.cache_write_tokens)
    cache_write_1h_tokens: int = 0  # of those, kept an hour (Scenario.cache_write_1h_tokens)
    reasoning: str | None = None  # the model's reasoning (Scenario.reasoning)
    redacted_thinking: str | None = None  # Claude's redacted block (Scenario.redacted_thinking)
    obfuscation: bool = False  # chunks padded as OpenAI's (Scenario.obfuscation)
    empty_annotations: bool = False  # Scenario.empty_annotations
    usage_on_finish: bool = False  # the usage on the finish chunk (Scenario.usage_on_finish)
    stop_sequence: str | None = None  # that cut the text, for dialects that say (Anthropic's)
    audio: bool = False  # a spoken answer (`modalities: ["audio"]`: _audio_answers)

    @property
    def completion_tokens(self) -> int:
        return self.n * (2 if self.tool_name is not None else count_words(self.text))

    @property
    def finish_reason(self) -> str:
        if self.tool_name is not None and self.finish != "stop":
            return "tool_calls"  # unless "stop": a server that says that of calls too
        return self.finish or "stop"


def stop_text(text: str, stop: Any) -> str:
    """The answer cut before the first of OpenAI's `stop` sequences it contains."""
    sequences = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cuts = [text.find(s) for s in sequences if isinstance(s, str) and s and s in text]
    return text[: min(cuts)] if cuts else text


def _tokens(piece: str) -> list[bytes]:
    """A piece's tokens: itself, or, when it holds a 4-byte character (an emoji), two tokens
    that split that character's bytes, as a byte-level tokenizer does."""
    raw = piece.encode()
    wide = next((i for i, c in enumerate(piece) if len(c.encode()) == 4), None)
    if wide is None:
        return [raw]
    mid = len(piece[:wide].encode()) + 2
    return [raw[:mid], raw[mid:]]


def logprobs(answer: ChatAnswer, pieces: list[str]) -> dict[str, Any] | None:
    """OpenAI's chat `logprobs` of these pieces (`piece_logprobs`), when the request asked."""
    if answer.top_logprobs is None or answer.tool_name is not None:
        return None
    content = [e for entries in piece_logprobs(pieces, answer.top_logprobs) for e in entries]
    return {"content": content, "refusal": None}


def piece_logprobs(pieces: list[str], top: int) -> list[list[dict[str, Any]]]:
    """Each piece's logprob entries, `top` alternatives each (one token a piece, two for a
    piece with an emoji: a token of part of a character is written as its escaped bytes,
    `\\xf0\\x9f`, as OpenAI's and DeepSeek's are); made up, in the shape OpenAI gives."""
    out: list[list[dict[str, Any]]] = []
    i = 0
    for piece in pieces:
        entries = []
        for raw in _tokens(piece):
            i += 1
            logprob, token = -0.25 * i, raw.decode(errors="backslashreplace")
            alternatives = [(token, logprob), *((f"alt{k}", logprob - k) for k in range(1, 20))]
            entries.append(
                {
                    "token": token,
                    "logprob": logprob,
                    "bytes": list(raw),
                    "top_logprobs": [
                        {"token": t, "logprob": lp, "bytes": list(raw if k == 0 else t.encode())}
                        for k, (t, lp) in enumerate(alternatives[:top])
                    ],
                }
            )
        out.append(entries)
    return out


def chat_completion(answer: ChatAnswer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.reasoning is not None:
        message["reasoning_content"] = answer.reasoning
    message.update(audio_message(answer))  # a spoken answer's `audio` instead of its content
    if answer.tool_name is not None:
        message["content"] = None
        call = tool_call_obj(answer.tool_name, answer.tool_arguments, answer.custom)
        message["tool_calls"] = [call]
    return {
        "id": answer.completion_id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [
            {
                "index": index,
                "message": message,
                "logprobs": logprobs(answer, answer.pieces),
                "finish_reason": answer.finish_reason,
            }
            for index in range(answer.n)
        ],
        "usage": usage(answer.prompt_tokens, answer.completion_tokens, answer.cached_tokens),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunk(answer: ChatAnswer, choices: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": answer.completion_id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }
    if with_usage:
        chunk["usage"] = None  # OpenAI sends usage: null on every chunk but the last
    if answer.obfuscation:  # OpenAI's padding of every chunk to a size that tells nothing
        chunk["obfuscation"] = "Zx9" * (1 + len(orjson.dumps(choices)) % 5)
    return chunk


def _choices(
    answer: ChatAnswer, delta: dict[str, Any], finish_reason: str | None = None
) -> list[dict[str, Any]]:
    """One delta for each of the answer's `n` choices, with the logprobs of its content."""
    content = delta.get("content")
    lp = logprobs(answer, [content]) if content else None
    return [
        {"index": i, "delta": delta, "logprobs": lp, "finish_reason": finish_reason}
        for i in range(answer.n)
    ]


def content_deltas(answer: ChatAnswer) -> list[dict[str, Any]]:
    if answer.audio and answer.tool_name is None:
        return audio_deltas(answer.completion_id, answer.created, answer.pieces)
    if answer.tool_name is None:
        cited: dict[str, Any] = {"annotations": []} if answer.empty_annotations else {}
        return [{"content": piece, **cited} for piece in answer.pieces]
    call = tool_call_obj(answer.tool_name, "", answer.custom)
    key, field = ("custom", "input") if answer.custom else ("function", "arguments")
    return [
        {"tool_calls": [{"index": 0, **call}]},
        {"tool_calls": [{"index": 0, key: {field: answer.tool_arguments}}]},
    ]


def stream_chunks(answer: ChatAnswer, include_usage: bool) -> tuple[list[dict[str, Any]], int]:
    """The chunks of a healthy stream, and how many precede the finish_reason chunk."""
    role_content = None if answer.tool_name is not None else ""
    deltas = [{"role": "assistant", "content": role_content}]
    if answer.reasoning is not None:  # before the answer, a word a chunk, as DeepSeek streams it
        deltas += [{"reasoning_content": piece} for piece in _pieces(answer.reasoning)]
    deltas += content_deltas(answer)
    chunks = [_chunk(answer, _choices(answer, d), include_usage) for d in deltas]
    content_count = len(chunks)
    chunks.append(_chunk(answer, _choices(answer, {}, answer.finish_reason), include_usage))
    if include_usage:
        final = _chunk(answer, [], False)
        counts = usage(answer.prompt_tokens, answer.completion_tokens, answer.cached_tokens)
        (chunks[-1] if answer.usage_on_finish else final)["usage"] = counts
        if answer.obfuscation:  # last, after the usage, as OpenAI writes it
            final["obfuscation"] = final.pop("obfuscation")
        chunks.append(final)
    return chunks, content_count


def stream_events(answer: ChatAnswer, include_usage: bool) -> tuple[list[bytes], int]:
    """All SSE events of a healthy stream, and how many precede the finish_reason chunk."""
    chunks, content_count = stream_chunks(answer, include_usage)
    return [*(sse(chunk) for chunk in chunks), DONE_EVENT], content_count


# ---- embeddings / models ------------------------------------------------------------------


def embedding_inputs(raw: Any) -> list[tuple[str, int]] | None:
    """(text, token count) per input; None if `input` is not a valid OpenAI embeddings input."""
    if isinstance(raw, str):
        return [(raw, count_words(raw))]
    if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        return [(" ".join(map(str, raw)), len(raw))]  # a single token array
    if not isinstance(raw, list) or not raw:
        return None
    out: list[tuple[str, int]] = []
    for item in raw:
        if isinstance(item, str):
            out.append((item, count_words(item)))
        elif isinstance(item, list) and all(isinstance(t, int) for t in item):
            out.append((" ".join(map(str, item)), len(item)))
        else:
            return None
    return out


def embedding_vector(text: str, dims: int) -> list[float]:
    """Unit-length vector derived from SHA-256 of the text: same text, same vector."""
    raw = b""
    block = 0
    while len(raw) < 4 * dims:
        raw += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    ints = struct.unpack(f"<{dims}I", raw[: 4 * dims])
    values = [(i / 0xFFFFFFFF) * 2.0 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Round-trip through float32 so the float and base64 encodings carry identical numbers.
    packed = struct.pack(f"<{dims}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dims}f", packed))


def embeddings_response(
    model: str, inputs: list[tuple[str, int]], dims: int, encoding_format: str | None
) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for index, (text, _) in enumerate(inputs):
        vector = embedding_vector(text, dims)
        embedding: Any = vector
        if encoding_format == "base64":
            # The openai SDK asks for base64 by default and decodes it as little-endian float32.
            embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(n for _, n in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_obj(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "fake"}


def models_response(models: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [model_obj(m) for m in models]}
