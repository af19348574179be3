"""Pure helpers shared by the providers' embeddings mappings: the texts a native format
embeds, the caller's own fields, the one vector type asked of Cohere and Titan, and OpenAI's
embeddings answer (its `base64` encoding too)."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from clients import embedding_params_to_openai, float32_values
from clients.codec.gemini import GEMINI_ONLY
from clients.switchboard.v1 import embeddings_pb2
from router_service.providers._mapping import JsonObject, unsupported

# Keys of an OpenAI embeddings body; any other key is a provider's own. The Gemini entrance's
# `gemini_only` (taskType, title) is Google's deployments' alone (`gemini_hints`).
_OPENAI_EMBED_KEYS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_NOT_OWN = _OPENAI_EMBED_KEYS | {GEMINI_ONLY}


def embedding_texts(params: embeddings_pb2.EmbeddingParams) -> list[str]:
    """The texts to embed; token inputs only mean something to OpenAI's own tokenizer."""
    which = params.WhichOneof("input")
    if which == "text":
        return [params.text]
    if which == "texts":
        return list(params.texts.values)
    raise unsupported("this provider embeds text only, not token arrays", "input")


def embedding_passthrough(params: embeddings_pb2.EmbeddingParams) -> JsonObject:
    """The caller's provider-specific fields of an embeddings request (Cohere's `input_type`,
    `truncate`…): the keys OpenAI's embeddings API does not define."""
    if not params.extra_json:  # the common case: no copy of every input to find none
        return {}
    body = embedding_params_to_openai(params)
    return {k: v for k, v in body.items() if k not in _NOT_OWN}


def openai_embed_body(params: embeddings_pb2.EmbeddingParams) -> JsonObject:
    """The OpenAI embeddings body of `params` for an OpenAI-format server, without the Gemini
    entrance's `gemini_only` (a strict schema, OpenAI's own, 400s a property it does not know)."""
    body = embedding_params_to_openai(params)
    body.pop(GEMINI_ONLY, None)
    return body


def gemini_hints(params: embeddings_pb2.EmbeddingParams) -> JsonObject:
    """The Gemini entrance's `taskType` and `title` (its `gemini_only`), for Google's models."""
    if GEMINI_ONLY not in params.extra_json:  # the common case: no parse
        return {}
    hints = embedding_params_to_openai(params).get(GEMINI_ONLY)
    return dict(hints) if isinstance(hints, Mapping) else {}


# Cohere Embed's `embedding_types` whose vectors are numbers (https://docs.cohere.com/reference/embed).
COHERE_TYPES = ("float", "int8", "uint8", "binary", "ubinary")


def vector_type(own: Mapping[str, Any], field: str, types: Sequence[str]) -> str:
    """The one embedding type (`types[0]`, float, unless the caller's own `field` of
    `embedding_passthrough` names another) a request asks of a model that answers only the
    types asked (Cohere Embed's `embedding_types`, Titan V2's `embeddingTypes`). An OpenAI
    answer carries one vector of numbers per input: several types, or one of no numbers, is
    UNSUPPORTED_INPUT naming the field (an answer without the type read was the deployment's
    failure, which cooled it for every caller)."""
    asked = own.get(field, [types[0]])
    if isinstance(asked, list) and len(asked) == 1 and asked[0] in types:
        return str(asked[0])
    raise unsupported(
        f"{field}: one of {', '.join(types)} (an OpenAI answer carries one vector of numbers "
        f"per input), not {asked!r}",
        field,
    )


def embedding_list(
    model: str, vectors: Sequence[Sequence[float]], encoding_format: str | None, tokens: int
) -> JsonObject:
    """An OpenAI embeddings response. `base64` (the openai SDK's default) packs little-endian
    float32, as OpenAI does."""
    data = []
    for index, vector in enumerate(vectors):
        embedding: Any = [float(v) for v in vector]
        if encoding_format == "base64":
            embedding = float32_base64(embedding)
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def float32_base64(vector: Sequence[float]) -> str:
    """A vector as OpenAI's `base64` encoding has it: little-endian float32, base64-encoded. A
    number past float32's range is its infinity, as a float32 cast (numpy's) gives it."""
    try:
        packed = struct.pack(f"<{len(vector)}f", *vector)
    except OverflowError:  # rare: only then a pack per number
        packed = b"".join(map(_float32, vector))
    return base64.b64encode(packed).decode("ascii")


def _float32(number: float) -> bytes:
    try:
        return struct.pack("<f", number)
    except OverflowError:  # `struct` refuses what rounds past float32's largest; a cast: ±inf
        return struct.pack("<f", math.copysign(math.inf, number))


def encoded_as_asked(
    result: embeddings_pb2.EmbeddingResult, encoding_format: str
) -> embeddings_pb2.EmbeddingResult:
    """An OpenAI-format server's answer in the encoding asked for: many (SGLang, Infinity, LM
    Studio, Ollama before 0.12.7) list floats whatever `encoding_format` says, and a caller
    that asked `base64` decodes a string (openai-node, openai-dotnet always ask for it)."""
    data = result.data
    if encoding_format != "base64" or not data or data[0].HasField("base64"):
        return result  # as asked: a server that packs packs every vector (no walk of 2,048)
    for item in data:
        if not item.HasField("base64"):
            item.base64 = float32_base64(item.values)
            del item.values[:]
    return result


def as_floats(result: embeddings_pb2.EmbeddingResult) -> embeddings_pb2.EmbeddingResult:
    """`result`'s `base64` vectors (OpenAI's little-endian float32) as float `values`, in
    place: a cached answer kept as it came in base64, for a caller that asks floats."""
    data = result.data
    if not data or not data[0].HasField("base64"):
        return result  # floats already: every vector alike (no walk of 2,048)
    for item in data:
        if item.HasField("base64"):
            item.values[:] = float32_values(item.base64)  # checked as it came (the codec)
            item.ClearField("base64")
    return result


def cached_as_asked(
    result: embeddings_pb2.EmbeddingResult, encoding_format: str
) -> embeddings_pb2.EmbeddingResult:
    """A cached answer (one for both encodings: cache/_keys.py) in the encoding asked for: as
    it was kept when that is the one, converted (one pass) when it is not."""
    if encoding_format == "base64":
        return encoded_as_asked(result, encoding_format)
    return as_floats(result)
