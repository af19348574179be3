"""OpenAI embeddings request and response ⇄ ``EmbeddingParams`` / ``EmbeddingResult``.

Every ``input`` shape survives (a string, strings, tokens, lists of tokens), and so does a
``base64`` vector. Vector components are doubles: a JSON integer component (``0``) comes back as
the same number written as a float (``0.0``).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from clients.codec._json import (
    assign,
    at,
    at_index,
    dump_extra,
    expect_int,
    expect_int32,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail_type,
    has,
    invalid_value,
    merge_extra,
    missing,
    split_known,
    upstream_format,
)
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import embeddings_pb2

_OPTIONAL = {"encoding_format": expect_str, "dimensions": expect_int, "user": expect_str}
# What every deployment kind can answer (the others' floats packed for `base64`).
_ENCODINGS = ("float", "base64")
_PARAM_KEYS = frozenset({"model", "input", *_OPTIONAL})
_RESULT_KEYS = frozenset({"object", "data", "model", "usage"})
_ITEM_KEYS = frozenset({"object", "index", "embedding"})
_USAGE_KEYS = ("prompt_tokens", "total_tokens")


def embedding_params_from_openai(body: dict[str, Any]) -> embeddings_pb2.EmbeddingParams:
    """Parse a caller's embeddings body; raises :class:`InvalidRequestError`."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    # An option sent as null is unset (a caller's None), as OpenAI reads it.
    typed, extra = split_known(body, _PARAM_KEYS, nullable=frozenset(_OPTIONAL))
    params = embeddings_pb2.EmbeddingParams()
    for key in ("model", "input"):
        if key not in typed:
            missing(key)
    params.model = expect_str(typed["model"], "model")
    if not params.model:
        extra["model"] = ""
    _input_from_openai(params, typed["input"])
    for key, read in _OPTIONAL.items():
        if key in typed:
            setattr(params, key, read(typed[key], key))
    _check_options(params)
    params.extra_json = dump_extra(extra, "")
    return params


def _check_options(params: embeddings_pb2.EmbeddingParams) -> None:
    """What OpenAI refuses of the options, refused whatever the group (a kind that packs its
    own vectors answered floats for any `encoding_format`, and sent a `dimensions` of 0 on)."""
    if has(params, "encoding_format") and params.encoding_format not in _ENCODINGS:
        invalid_value("encoding_format", params.encoding_format, _ENCODINGS)
    if has(params, "dimensions") and params.dimensions < 1:
        raise InvalidRequestError(
            f"Invalid value for 'dimensions': {params.dimensions}. It must be at least 1.",
            param="dimensions",
        )


def embedding_params_to_openai(params: embeddings_pb2.EmbeddingParams) -> dict[str, Any]:
    """The OpenAI body of `params`; raises :class:`InvalidRequestError` for options OpenAI
    refuses (a gRPC caller's, which no edge checked)."""
    _check_options(params)
    out: dict[str, Any] = {}
    if params.model:
        out["model"] = params.model
    which = params.WhichOneof("input")
    if which == "text":
        out["input"] = params.text
    elif which == "texts":
        out["input"] = list(params.texts.values)
    elif which == "tokens":
        out["input"] = list(params.tokens.values)
    elif which == "token_lists":
        out["input"] = [list(tokens.values) for tokens in params.token_lists.lists]
    for key in _OPTIONAL:
        if has(params, key):
            out[key] = getattr(params, key)
    return merge_extra(out, params.extra_json, "")


def _input_from_openai(params: embeddings_pb2.EmbeddingParams, value: Any) -> None:
    """Pick the ``input`` shape by its first element; an empty array is an empty list of texts."""
    if isinstance(value, str):
        params.text = value
        return
    if not isinstance(value, list):
        fail_type("input", "a string or an array", value)
    first = value[0] if value else ""
    if isinstance(first, str):
        params.texts.SetInParent()
        params.texts.values.extend(expect_str(v, at_index("input", i)) for i, v in enumerate(value))
    elif isinstance(first, list):
        params.token_lists.SetInParent()
        for i, tokens in enumerate(value):
            path = at_index("input", i)
            token_list = params.token_lists.lists.add()
            token_list.values.extend(
                expect_int(t, at_index(path, j)) for j, t in enumerate(expect_list(tokens, path))
            )
    else:
        params.tokens.SetInParent()
        params.tokens.values.extend(
            expect_int(t, at_index("input", i)) for i, t in enumerate(value)
        )


def embedding_result_from_openai(body: dict[str, Any]) -> embeddings_pb2.EmbeddingResult:
    """Parse an upstream's embeddings response; raises :class:`UpstreamFormatError`."""
    with upstream_format("embeddings response"):
        typed, extra = split_known(expect_object(body, ""), _RESULT_KEYS)
        extra.pop("object", None)
        result = embeddings_pb2.EmbeddingResult()
        for i, item in enumerate(expect_list(typed.get("data", []), "data")):
            result.data.append(_embedding_from_openai(item, at_index("data", i)))
        if "model" in typed:
            result.model = expect_str(typed["model"], "model")
        if "usage" in typed:
            usage = _usage_from_openai(typed["usage"])
            if usage is None:
                extra["usage"] = typed["usage"]
            else:
                assign(result.usage, usage)
        result.extra_json = dump_extra(extra, "")
        return result


def embedding_result_to_openai(result: embeddings_pb2.EmbeddingResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "list",
        "data": [_embedding_to_openai(e, at_index("data", i)) for i, e in enumerate(result.data)],
        "model": result.model,
    }
    if result.HasField("usage"):
        out["usage"] = _usage_to_openai(result.usage)
    return merge_extra(out, result.extra_json, "")


def _embedding_from_openai(value: Any, path: str) -> embeddings_pb2.Embedding:
    typed, extra = split_known(expect_object(value, path), _ITEM_KEYS)
    extra.pop("object", None)
    item = embeddings_pb2.Embedding()
    if "index" in typed:
        item.index = expect_int32(typed["index"], at(path, "index"))
    vector = typed.get("embedding", [])
    if isinstance(vector, str):
        _check_float32(vector, at(path, "embedding"))
        item.base64 = vector
    elif isinstance(vector, list):
        epath = at(path, "embedding")
        item.values.extend(expect_number(x, at_index(epath, j)) for j, x in enumerate(vector))
    else:
        fail_type(at(path, "embedding"), "an array of numbers or a base64 string", vector)
    item.extra_json = dump_extra(extra, path)
    return item


def float32_values(packed: str) -> tuple[float, ...]:
    """An embedding's `base64` (OpenAI's: little-endian float32) as its numbers, read as the
    openai SDK reads it. ValueError when it holds none (bad padding, bytes not 4 apiece)."""
    raw = _float32_bytes(packed)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _plainly_float32(packed: str) -> bool:
    """Whether `packed` is plain base64 (the alphabet alone, then at most two `=`) of a whole
    number of float32 values: what decoding it would say, without decoding. Anything else
    (line breaks, other characters, which the SDK's decoder skips) is decoded to tell."""
    body = packed.rstrip("=")
    padding = len(packed) - len(body)
    return (
        len(packed) % 4 == 0
        and padding <= 2
        and (len(packed) // 4 * 3 - padding) % 4 == 0
        and body.isascii()
        and not body.encode("ascii").translate(None, _ALPHABET)
    )


def _float32_bytes(packed: str) -> bytes:
    raw = base64.b64decode(packed)  # its errors (binascii.Error) are ValueErrors
    if len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes, not 4 per float32")
    return raw


def _check_float32(packed: str, path: str) -> None:
    """An upstream's `base64` vector is float32 values, or its answer is malformed: kept as it
    came (the cache), it would fail every caller that asks floats."""
    if _plainly_float32(packed):
        return  # the usual answer: ~3 µs a 1,536-dimension vector where decoding it costs ~16
    try:
        _float32_bytes(packed)
    except ValueError as exc:
        raise InvalidRequestError(
            f"Invalid value for '{path}': not base64 of float32 values ({exc}).", param=path
        ) from exc


def _embedding_to_openai(item: embeddings_pb2.Embedding, path: str) -> dict[str, Any]:
    vector: str | list[float] = item.base64 if item.HasField("base64") else list(item.values)
    out = {"object": "embedding", "index": item.index, "embedding": vector}
    return merge_extra(out, item.extra_json, path)


def _usage_from_openai(value: Any) -> embeddings_pb2.EmbeddingUsage | None:
    """Typed usage when it round-trips (``EmbeddingUsage`` has no extras), else ``None``."""
    obj = expect_object(value, "usage")
    usage = embeddings_pb2.EmbeddingUsage()
    for key in _USAGE_KEYS:
        if obj.get(key) is not None:
            setattr(usage, key, expect_int(obj[key], at("usage", key)))
    return usage if _usage_to_openai(usage) == obj else None


def _usage_to_openai(usage: embeddings_pb2.EmbeddingUsage) -> dict[str, Any]:
    return {key: getattr(usage, key) for key in _USAGE_KEYS}
