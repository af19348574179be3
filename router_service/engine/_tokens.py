"""A cheap, pre-call estimate of a request's token cost, for per-key tpm windows. Corrected from
the upstream's reported usage after the call (KeyLease.settle_tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec import CHARS_PER_TOKEN, estimate_prompt_tokens
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service.guardrails._texts import media_texts

# When the caller sets no output bound, assume this many output tokens.
_DEFAULT_OUTPUT_TOKENS = 256
_GEMINI_CONFIG = "generationConfig"


@dataclass(frozen=True, slots=True)
class NativeBounds:
    """Output bounds a caller set in a provider's own words in its extras (`extra_json`), None
    where it set none (as a whole number): Gemini's `generationConfig.maxOutputTokens` and
    `candidateCount`. Anthropic's and Cohere's are OpenAI's names (`max_tokens`), which the
    codec refuses in extras; Gemini's sit in an object of its own, which the adapter merges
    with the mapped fields, the caller's winning (`providers/_gemini_map.py`)."""

    max_output_tokens: int | None = None
    candidates: int | None = None


_NO_BOUNDS = NativeBounds()


def native_bounds(params: chat_pb2.ChatParams) -> NativeBounds:
    """The output bounds in `params`' extras (parsed only when they name a generationConfig)."""
    if _GEMINI_CONFIG not in params.extra_json:
        return _NO_BOUNDS
    try:
        extra = orjson.loads(params.extra_json)
    except orjson.JSONDecodeError:  # the codec refuses it where the request is mapped
        return _NO_BOUNDS
    config = extra.get(_GEMINI_CONFIG) if isinstance(extra, dict) else None
    if not isinstance(config, dict):
        return _NO_BOUNDS
    return NativeBounds(_whole(config.get("maxOutputTokens")), _whole(config.get("candidateCount")))


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def estimate_chat_tokens(params: chat_pb2.ChatParams) -> int:
    """The prompt's tokens and the most the answer may take (`max_tokens` for each of `n`).

    A bound set in a provider's own words (`native_bounds`) counts too, the larger of it and
    OpenAI's when both are set: the deployment that serves the call, unknown here, takes one or
    the other. Without either, `_DEFAULT_OUTPUT_TOKENS`."""
    native = native_bounds(params)
    bounds = [native.max_output_tokens] if native.max_output_tokens is not None else []
    if params.HasField("max_completion_tokens"):
        bounds.append(params.max_completion_tokens)
    elif params.HasField("max_tokens"):
        bounds.append(params.max_tokens)
    output = max(bounds) if bounds else _DEFAULT_OUTPUT_TOKENS
    # Each of `n` choices is generated (and billed) upstream: a budget or tpm counts them all.
    choices = max(params.n if params.HasField("n") else 1, native.candidates or 1, 1)
    return estimate_prompt_tokens(params) + max(0, output) * choices


def estimate_chunk_tokens(chunk: chat_pb2.ChatCompletionChunk) -> int:
    """The tokens a stream chunk's deltas carry (text, tool arguments, reasoning in extras), by
    their encoded size: what a stream that reports no usage relayed."""
    size = sum(choice.delta.ByteSize() for choice in chunk.choices)
    return -(-size // CHARS_PER_TOKEN)


def estimate_media_tokens(params: media_pb2.MediaParams) -> int:
    """A media call's texts (a moderation's input, an image prompt, the text to speak), four
    characters a token; an audio upload is not estimated (its usage, when reported, settles)."""
    return sum(len(slot.text) // CHARS_PER_TOKEN + 1 for slot in media_texts(params))


def estimate_embedding_tokens(params: embeddings_pb2.EmbeddingParams) -> int:
    """An embeddings request's texts, four characters a token (token inputs: their count)."""
    which = params.WhichOneof("input")
    if which == "text":
        return len(params.text) // CHARS_PER_TOKEN + 1
    if which == "texts":
        return sum(len(text) // CHARS_PER_TOKEN + 1 for text in params.texts.values)
    if which == "tokens":
        return len(params.tokens.values)
    if which == "token_lists":
        return sum(len(tokens.values) for tokens in params.token_lists.lists)
    return 0
